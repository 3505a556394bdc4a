"""Benchmark of decoder upsampling layers: ConvTranspose vs sub-pixel vs resize.

The conv decoder upsamples 7x7x128 -> 14x14x64 -> 28x28x32 -> 28x28x1. On
CPU, XLA lowers the gradient of a strided transposed convolution to a conv
over an input dilated with zeros, which is reportedly slow. This script times,
per upsampling layer (64 -> 32 channels, 14x14 -> 28x28) and for the whole
decoder, the forward pass and forward+backward (gradient w.r.t. params and
input) of:

* ``convT``:       ``nn.ConvTranspose`` kernel 4, stride 2, 'SAME';
* ``subpixel-kK``: ``nn.Conv`` to 4*C_out channels, kernel K, 'SAME', at the
  input resolution, then ``depth_to_space(., 2)`` (pixel shuffle);
* ``resize-k3``:   nearest-neighbour 2x upsampling, then ``nn.Conv`` kernel 3.

Each function is ``jax.jit``-ed; warm-up calls (which include compilation) are
excluded; the table gives the median (and minimum) of ``--reps`` timed calls,
each ending with ``jax.block_until_ready``. The timed calls of all rows are
interleaved round-robin, so background load affects every row alike.

Usage::

    python benchmarks/upsampling.py                 # full table, markdown
    python benchmarks/upsampling.py --check_only    # just the self-checks
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np


# ----------------------------------------------------------------------------
# Reusable pieces (candidates for pareto_vae_jax.models).
# ----------------------------------------------------------------------------


def depth_to_space(x: jax.Array, block: int) -> jax.Array:
  """Rearranges channels into spatial blocks (pixel shuffle), NHWC.

  Same convention as ``tf.nn.depth_to_space`` with ``data_format='NHWC'``:
  ``out[..., h*block + i, w*block + j, c] = x[..., h, w, (i*block + j)*C + c]``
  with ``C = channels // block**2``.

  Args:
    x: Array of shape ``(..., H, W, block*block*C)``; any leading dims.
    block: Upsampling factor, >= 1.

  Returns:
    Array of shape ``(..., H*block, W*block, C)``.

  Raises:
    ValueError: if the channel count is not divisible by ``block**2``.
  """
  *lead, h, w, c = x.shape
  if block < 1 or c % (block * block):
    raise ValueError(
        f"depth_to_space: channels ({c}) must be divisible by block**2 "
        f"({block}**2)."
    )
  out_c = c // (block * block)
  x = x.reshape(*lead, h, w, block, block, out_c)
  # (..., H, W, i, j, C) -> (..., H, i, W, j, C): row offset i next to H.
  x = jnp.swapaxes(x, -4, -3)
  return x.reshape(*lead, h * block, w * block, out_c)


def upsample_nearest(x: jax.Array, factor: int) -> jax.Array:
  """Nearest-neighbour upsampling of an NHWC array by an integer factor.

  Equal to ``jax.image.resize(x, ..., method='nearest')`` for integer factors,
  but written as broadcast + reshape so that its gradient is a plain
  reshape + sum rather than a gather/scatter.

  Args:
    x: Array of shape ``(..., H, W, C)``.
    factor: Integer upsampling factor.

  Returns:
    Array of shape ``(..., H*factor, W*factor, C)``.
  """
  *lead, h, w, c = x.shape
  x = x[..., :, None, :, None, :]
  x = jnp.broadcast_to(x, (*lead, h, factor, w, factor, c))
  return x.reshape(*lead, h * factor, w * factor, c)


class Upsample2x(nn.Module):
  """2x spatial upsampling with a learned conv, by one of three methods.

  Attributes:
    features: Output channels.
    method: 'convT', 'subpixel' or 'resize'.
    kernel: Kernel size (4 is the usual choice for 'convT').
  """

  features: int
  method: str
  kernel: int

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = (self.kernel, self.kernel)
    if self.method == "convT":
      return nn.ConvTranspose(self.features, k, strides=(2, 2), padding="SAME")(x)
    if self.method == "subpixel":
      # One conv at the low resolution produces the 2x2 output phases as
      # channels; the shuffle is free data movement (no zero-dilated input).
      return depth_to_space(nn.Conv(4 * self.features, k, padding="SAME")(x), 2)
    if self.method == "resize":
      return nn.Conv(self.features, k, padding="SAME")(upsample_nearest(x, 2))
    raise ValueError(f"unknown upsampling method {self.method!r}")


class Decoder(nn.Module):
  """The MNIST conv decoder: z -> 7x7x128 -> 14x14x64 -> 28x28x32 -> 28x28x1.

  Attributes:
    method: Upsampling method, see `Upsample2x`.
    kernel: Kernel size of the upsampling layers.
  """

  method: str
  kernel: int

  @nn.compact
  def __call__(self, z: jax.Array) -> jax.Array:
    x = nn.relu(nn.Dense(7 * 7 * 128)(z)).reshape(z.shape[0], 7, 7, 128)
    x = nn.relu(Upsample2x(64, self.method, self.kernel)(x))
    x = nn.relu(Upsample2x(32, self.method, self.kernel)(x))
    return nn.Conv(1, (3, 3), padding="SAME")(x)  # Bernoulli logits.


# (row label, method, kernel)
VARIANTS = (
    ("convT-k4", "convT", 4),
    ("subpixel-k3", "subpixel", 3),
    ("subpixel-k2", "subpixel", 2),
    ("resize-k3", "resize", 3),
)


# ----------------------------------------------------------------------------
# Self-checks.
# ----------------------------------------------------------------------------


def convT_fit_residual(subpixel_kernel: int) -> float:
  """How well a sub-pixel conv can reproduce a random ConvTranspose(k4, s2).

  The sub-pixel layer is linear in its parameters, so the best fit to the
  output of a random transposed conv on random inputs is a least-squares
  problem. A residual at float32 round-off means every ConvTranspose k4/s2
  'SAME' layer is exactly a sub-pixel layer with that kernel size (with some
  taps zero), i.e. switching loses no expressiveness.

  Args:
    subpixel_kernel: Kernel size of the sub-pixel conv.

  Returns:
    Max absolute residual of the fit, relative to max |target|.
  """
  x = jax.random.normal(jax.random.key(0), (4, 5, 5, 2))
  conv_t = Upsample2x(1, "convT", 4)
  p = conv_t.init(jax.random.key(1), x)
  leaves, tree = jax.tree.flatten(p)
  keys = jax.random.split(jax.random.key(2), len(leaves))
  p = jax.tree.unflatten(
      tree, [jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])
  y = np.asarray(conv_t.apply(p, x)).ravel()
  sub = Upsample2x(1, "subpixel", subpixel_kernel)
  flat, unravel = jax.flatten_util.ravel_pytree(sub.init(jax.random.key(3), x))
  design = np.asarray(
      jax.jacfwd(lambda f: sub.apply(unravel(f), x).ravel())(flat))
  sol, *_ = np.linalg.lstsq(design, y, rcond=None)
  return float(np.abs(design @ sol - y).max() / np.abs(y).max())


def self_check() -> None:
  """Checks depth_to_space / upsample_nearest and the layer output shapes."""
  rng = np.random.default_rng(0)
  for block, (b, h, w, c) in ((2, (2, 3, 4, 12)), (3, (1, 2, 2, 18)), (1, (1, 2, 3, 5))):
    x = rng.standard_normal((b, h, w, c)).astype(np.float32)
    oc = c // block**2
    # Reference 1: the definition, index by index.
    ref = np.empty((b, h * block, w * block, oc), np.float32)
    for hh in range(h):
      for ww in range(w):
        for i in range(block):
          for j in range(block):
            ref[:, hh * block + i, ww * block + j, :] = x[
                :, hh, ww, (i * block + j) * oc:(i * block + j + 1) * oc]
    # Reference 2: the usual NHWC reshape/transpose formulation.
    ref2 = (x.reshape(b, h, w, block, block, oc).transpose(0, 1, 3, 2, 4, 5)
            .reshape(b, h * block, w * block, oc))
    got = np.asarray(depth_to_space(jnp.asarray(x), block))
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, ref2)
  # Leading dims beyond one batch axis are carried through.
  x5 = jnp.asarray(rng.standard_normal((2, 3, 4, 5, 8)), jnp.float32)
  np.testing.assert_array_equal(
      depth_to_space(x5, 2).reshape(6, 8, 10, 2),
      depth_to_space(x5.reshape(6, 4, 5, 8), 2))
  try:
    depth_to_space(jnp.zeros((1, 2, 2, 6)), 2)
    raise AssertionError("depth_to_space accepted 6 channels for block 2")
  except ValueError:
    pass

  x = jnp.asarray(rng.standard_normal((2, 5, 7, 3)), jnp.float32)
  np.testing.assert_array_equal(
      upsample_nearest(x, 2),
      jax.image.resize(x, (2, 10, 14, 3), method="nearest"))

  key = jax.random.key(0)
  x = jnp.zeros((2, 14, 14, 64))
  for label, method, kernel in VARIANTS:
    layer = Upsample2x(32, method, kernel)
    out = jax.eval_shape(lambda x: layer.init_with_output(key, x)[0], x)
    assert out.shape == (2, 28, 28, 32), (label, out.shape)
    dec = Decoder(method, kernel)
    out = jax.eval_shape(lambda z: dec.init_with_output(key, z)[0], jnp.zeros((2, 16)))
    assert out.shape == (2, 28, 28, 1), (label, out.shape)
  # Sub-pixel conv: the conv sees 14x14 and makes 4*32 channels.
  params = Upsample2x(32, "subpixel", 3).init(key, x)["params"]
  assert params["Conv_0"]["kernel"].shape == (3, 3, 64, 128)
  # k3 sub-pixel contains ConvTranspose k4/s2; k2 does not (its 2x2 window
  # is off-centre for one of the two output phases).
  assert convT_fit_residual(3) < 1e-5
  assert convT_fit_residual(2) > 1e-2


# ----------------------------------------------------------------------------
# Timing.
# ----------------------------------------------------------------------------


def _time_interleaved(
    calls: list[tuple[Callable[..., Any], tuple[Any, ...]]],
    warmup: int,
    reps: int,
) -> list[tuple[float, float]]:
  """Times each `fn(*args)` in `calls`; returns (median, min) ms per call.

  Calls are timed round-robin (rep 1 of every call, then rep 2, ...) rather
  than one after another, so that a burst of background load on a shared
  machine slows all variants alike instead of skewing one row.
  """
  for fn, args in calls:
    for _ in range(warmup):  # The first call compiles.
      jax.block_until_ready(fn(*args))
  times: list[list[float]] = [[] for _ in calls]
  for _ in range(reps):
    for i, (fn, args) in enumerate(calls):
      t0 = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times[i].append((time.perf_counter() - t0) * 1e3)
  return [(statistics.median(t), min(t)) for t in times]


def _gflops(fn: Callable[..., Any], args: tuple[Any, ...]) -> float:
  """FLOPs of the compiled function according to XLA, in GFLOP (nan if n/a)."""
  try:
    cost = fn.lower(*args).compile().cost_analysis()
    if isinstance(cost, (list, tuple)):  # Older jax: one dict per device.
      cost = cost[0]
    return float(cost["flops"]) / 1e9
  except Exception:  # pylint: disable=broad-except
    return float("nan")


def make_calls(module: nn.Module, x: jax.Array
               ) -> list[tuple[Callable[..., Any], tuple[Any, ...]]]:
  """Jitted forward and forward+backward (grads w.r.t. params and input)."""
  params = module.init(jax.random.key(0), x)

  def loss(p, x):
    # A scalar that depends on every output element, as a real loss does.
    return jnp.mean(jnp.square(module.apply(p, x)))

  return [
      (jax.jit(module.apply), (params, x)),
      (jax.jit(jax.grad(loss, argnums=(0, 1))), (params, x)),
  ]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--latent_dim", type=int, default=16)
  parser.add_argument("--reps", type=int, default=30, help="timed calls")
  parser.add_argument("--warmup", type=int, default=3,
                      help="untimed calls first (the first one compiles)")
  parser.add_argument("--variants", default=",".join(v[0] for v in VARIANTS),
                      help="comma-separated subset of the row labels")
  parser.add_argument("--check_only", action="store_true",
                      help="run the self-checks and exit")
  args = parser.parse_args()

  self_check()
  print("self-check OK: depth_to_space == reference reshape/transpose and "
        "index definition; output shapes; ConvTranspose(k4,s2) fit residual "
        f"by subpixel-k3 {convT_fit_residual(3):.1e}, by subpixel-k2 "
        f"{convT_fit_residual(2):.1e} (relative)\n")
  if args.check_only:
    return

  wanted = args.variants.split(",")
  variants = [v for v in VARIANTS if v[0] in wanted]
  dev = jax.devices()[0]
  try:
    usable_cores = len(os.sched_getaffinity(0))
  except AttributeError:  # Not on Linux.
    usable_cores = os.cpu_count()
  print(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
  print(f"- jax {jax.__version__}, jaxlib {jax.lib.__version__}, "
        f"flax {flax.__version__}, python {platform.python_version()}")
  print(f"- backend: {jax.default_backend()} ({dev.device_kind}), "
        f"{jax.device_count()} device(s)")
  print(f"- CPU: {platform.processor() or platform.machine()}, "
        f"os.cpu_count()={os.cpu_count()}, usable cores={usable_cores}")
  print(f"- XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
  print(f"- batch {args.batch}, float32, median (min) of {args.reps} timed "
        f"calls (interleaved across rows) after {args.warmup} warm-up calls, "
        "ms\n", flush=True)

  key = jax.random.key(1)
  layer_x = jax.random.normal(key, (args.batch, 14, 14, 64))
  dec_z = jax.random.normal(key, (args.batch, args.latent_dim))
  rows, calls = [], []
  for what, make, x in (
      ("layer 14x14x64 -> 28x28x32", lambda m, k: Upsample2x(32, m, k), layer_x),
      ("decoder z -> 28x28x1", lambda m, k: Decoder(m, k), dec_z),
  ):
    for label, method, kernel in variants:
      rows.append((what, label))
      calls += make_calls(make(method, kernel), x)
  results = _time_interleaved(calls, args.warmup, args.reps)
  print("| what | upsampling | forward ms | fwd+bwd ms | fwd GFLOP | "
        "fwd+bwd GFLOP |")
  print("|---|---|---:|---:|---:|---:|")
  for i, (what, label) in enumerate(rows):
    (f_med, f_min), (b_med, b_min) = results[2 * i], results[2 * i + 1]
    f_gf, b_gf = (_gflops(*c) for c in calls[2 * i:2 * i + 2])
    print(f"| {what} | {label} | {f_med:.1f} ({f_min:.1f}) | "
          f"{b_med:.1f} ({b_min:.1f}) | {f_gf:.2f} | {b_gf:.2f} |")

if __name__ == "__main__":
  main()
