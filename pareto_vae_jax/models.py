"""Flax modules: encoders, decoders, the learned conditional prior, and the VAE that joins them.

The modules only produce distribution parameters and decoder outputs; sampling, densities and
KLs are the pure functions of ``pareto_vae_jax.distributions``. Conditioning follows the MNIST
CVAE report (section 3.2): the one-hot label is broadcast to extra input channels of the
encoder and concatenated to z for the decoder.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax import distributions as D
from pareto_vae_jax.distributions import joint, mixture

Array = jax.Array


def depth_to_space(x: Array, block: int) -> Array:
  """(B, H, W, C*b*b) -> (B, H*b, W*b, C), NHWC (the pixel shuffle of sub-pixel convolution)."""
  b, h, w, c = x.shape
  x = x.reshape(b, h, w, block, block, c // (block * block))
  return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, h * block, w * block, c // (block * block))


def _transpose_phase_taps(kernel: int) -> tuple[np.ndarray, tuple[int, int]]:
  """Which taps of a stride-2 'SAME' transposed conv reach each output phase (one axis).

  ``lax.conv_transpose`` correlates the kernel with the input dilated by 2 and padded by
  ``pad`` in front, so output ``2m + r`` is ``sum_t w[t] x[m + (r + t - pad) / 2]`` over the
  taps ``t`` that make ``r + t - pad`` even: each phase is a stride-1 correlation over a window
  of ``ceil(kernel / 2)`` input offsets starting at ``lo_r``. Returns ``(taps, (lo_0, lo_1))``:
  ``taps[r, j]`` is the tap at offset ``lo_r + j`` (``kernel`` where there is none).
  """
  pad = kernel - 1 if kernel < 3 else math.ceil(kernel / 2)  # jax's 'SAME' for stride 2
  width = math.ceil(kernel / 2)
  taps = np.full((2, width), kernel)
  starts = []
  for r in (0, 1):
    first = next(t for t in range(kernel) if (r + t - pad) % 2 == 0)
    starts.append((r + first - pad) // 2)
    for j, t in enumerate(range(first, kernel, 2)):
      taps[r, j] = t
  return taps, (starts[0], starts[1])


class ConvTranspose2x(nn.Module):
  """``nn.ConvTranspose(features, (k, k), strides=(2, 2), padding='SAME')``, computed as a
  sub-pixel convolution.

  The same parameters (names, shapes, initializers) and the same function (tests compare it
  with ``nn.ConvTranspose``), evaluated as one stride-1 convolution with a ``ceil(k/2)``-wide
  window whose output channels are the four output phases, each phase read at its own offset,
  then interleaved into the doubled image. XLA:CPU computes the gradient of a stride-2 transposed
  convolution several times slower than this (docs/benchmarks.md).
  """

  features: int
  kernel: int
  dtype: Any = jnp.float32
  weight_init: str = "lecun_normal"  # nn.ConvTranspose's own (see ``kernel_init``)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    x = x.astype(self.dtype)
    k, (batch, n), c_in = self.kernel, x.shape[:2], x.shape[-1]
    w = self.param("kernel", kernel_init(self.weight_init), (k, k, c_in, self.features))
    b = self.param("bias", bias_init(self.weight_init, k * k * c_in), (self.features,))
    taps, starts = _transpose_phase_taps(k)
    lo, shift = min(starts), max(starts) - min(starts)
    w = jnp.pad(w, ((0, 1), (0, 1), (0, 0), (0, 0)))  # tap k: zero (no tap at that offset)
    w = w[taps][:, :, taps]  # [phase_h, offset_h, phase_w, offset_w, in, out]
    w = w.transpose(1, 3, 4, 0, 2, 5).reshape(taps.shape[1], taps.shape[1], c_in, -1)
    # Window positions p = 0 .. n - 1 + shift over offsets lo + j; phase r reads p = m + s_r.
    # The padding is explicit: XLA:CPU runs this conv's gradient ~15x slower when the conv
    # pads its input itself (docs/benchmarks.md).
    hi = shift + lo + taps.shape[1] - 1
    x = jnp.pad(x, ((0, 0), (-lo, hi), (-lo, hi), (0, 0)))
    y = jax.lax.conv_general_dilated(x,
                                     w.astype(x.dtype), (1, 1),
                                     "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    y = y.reshape(*y.shape[:3], 2, 2, self.features)
    s = [r - lo for r in starts]
    rows = [
        jnp.stack([y[:, s[i]:s[i] + n, s[j]:s[j] + n, i, j] for j in (0, 1)], 3) for i in (0, 1)
    ]
    y = jnp.stack(rows, 3)  # [B, n, n, phase_h, phase_w, out]
    y = y.transpose(0, 1, 3, 2, 4, 5).reshape(batch, 2 * n, 2 * n, self.features)
    return y + b.astype(x.dtype)


class Upsample2x(nn.Module):
  """Doubles the spatial size, then crops to ``size``.

  ``subpixel``: a 3x3 conv to 4x the channels followed by depth-to-space, the same function
  class as a stride-2 transposed conv whose gradient XLA computes far faster on CPU (see
  docs/benchmarks.md). ``transpose``: the report's table 2, a stride-2 transposed conv with
  kernel ``kernel`` (``ConvTranspose2x``, the function of ``nn.ConvTranspose``).
  """

  features: int
  kernel: int
  size: int
  mode: str = "subpixel"
  dtype: Any = jnp.float32
  weight_init: str = "fan_in_uniform"

  @nn.compact
  def __call__(self, x: Array) -> Array:
    if self.mode == "subpixel":
      x = conv(4 * self.features, 3, x.shape[-1], self.weight_init, self.dtype)(x)
      x = depth_to_space(x, 2)
    elif self.mode == "transpose":
      x = ConvTranspose2x(self.features,
                          self.kernel,
                          self.dtype,
                          self.weight_init,
                          name="ConvTranspose_0")(x)
    else:
      raise ValueError(f"Unknown upsampling '{self.mode}'; valid choices: subpixel, transpose.")
    return x[:, :self.size, :self.size, :]


INITS = ("fan_in_uniform", "lecun_normal", "glorot_uniform")

# Hidden-layer activations of the MLP encoder and decoder (``config.activation``).
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": nn.relu,
    # The heavy-tail study's (its section 3.1: "all of them are LeakyReLU (with alpha = 0.01)").
    "leaky_relu": lambda x: nn.leaky_relu(x, negative_slope=0.01),
}


def kernel_init(init: str, scale: float = 1.0) -> nn.initializers.Initializer:
  """Weights of a dense or conv layer, with fan_in = inputs x kernel area.

  ``fan_in_uniform``: U(-sqrt(scale / fan_in), sqrt(scale / fan_in)), PyTorch's default for
  ``nn.Linear`` and ``nn.Conv2d`` at scale 1 (variance 1 / (3 fan_in)); ``lecun_normal``: a
  truncated N(0, scale / fan_in), Flax's default. ``fan_in_uniform`` trains the 784-400-20 MNIST
  VAE 0.7 nats further in 10 epochs (docs/benchmarks.md, "Quality at equal budget"). ``scale``
  < 1 on the encoder's last layer starts every posterior near the head's value at 0 (the
  heavy-tail study, section 3.2: smaller initial weights keep early LogNormal draws finite).
  ``glorot_uniform``: U(-sqrt(6 scale / (fan_in + fan_out)), +...), biases 0, MATLAB's default
  for its fully connected and convolution layers (the heavy-tail study's, its section 3.2).
  """
  if init == "glorot_uniform":
    return nn.initializers.variance_scaling(scale, "fan_avg", "uniform")
  if init == "fan_in_uniform":
    return nn.initializers.variance_scaling(scale / 3, "fan_in", "uniform")
  if init == "lecun_normal":
    return nn.initializers.variance_scaling(scale, "fan_in", "truncated_normal")
  raise ValueError(f"Unknown weight_init '{init}'; valid: {', '.join(INITS)}.")


def bias_init(init: str, fan_in: int, scale: float = 1.0) -> nn.initializers.Initializer:
  """Biases: U(-sqrt(scale / fan_in), sqrt(scale / fan_in)) for ``fan_in_uniform`` (PyTorch's
  at scale 1), else 0. With the weights' ``scale`` a layer's initial outputs scale by
  sqrt(scale) exactly (the same draws)."""
  if init in ("lecun_normal", "glorot_uniform"):
    return nn.initializers.zeros_init()
  bound = math.sqrt(scale / fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def dense(features: int, fan_in: int, init: str, dtype, scale: float = 1.0) -> nn.Dense:
  return nn.Dense(features,
                  dtype=dtype,
                  kernel_init=kernel_init(init, scale),
                  bias_init=bias_init(init, fan_in, scale))


def conv(features: int, kernel: int, in_channels: int, init: str, dtype, **kwargs) -> nn.Conv:
  """A 'SAME' ``nn.Conv`` with the ``init`` scheme (``kwargs``: strides, name)."""
  return nn.Conv(features, (kernel, kernel),
                 padding="SAME",
                 dtype=dtype,
                 kernel_init=kernel_init(init),
                 bias_init=bias_init(init, kernel * kernel * in_channels),
                 **kwargs)


class MLPEncoder(nn.Module):
  hidden: Sequence[int]
  num_outputs: int
  head_init_scale: float = 1.0
  dtype: Any = jnp.float32
  weight_init: str = "fan_in_uniform"
  activation: str = "relu"

  @nn.compact
  def __call__(self, x: Array, c: Array | None) -> Array:
    h = x.reshape(x.shape[0], -1)
    if c is not None:
      h = jnp.concatenate([h, c], axis=-1)
    for width in self.hidden:
      h = ACTIVATIONS[self.activation](dense(width, h.shape[-1], self.weight_init, self.dtype)(h))
    head = dense(self.num_outputs, h.shape[-1], self.weight_init, self.dtype, self.head_init_scale)
    return head(h).astype(jnp.float32)


class LabelChannelsConv(nn.Module):
  """``nn.Conv`` over ``x`` with the label broadcast to extra constant channels after it.

  The same parameters and the same function as ``nn.Conv(features, (k, k), strides, 'SAME')``
  applied to ``concat([x, c broadcast over space], -1)``, computed without the constant
  channels: the conv is linear, so their part is ``sum_j c_j conv(e_j, kernel)``, where the
  maps ``conv(e_j, kernel)`` of the one-hot images ``e_j`` (``num_classes`` of them, borders
  included) cost almost nothing. On MNIST this is 1 input channel instead of 11 in the
  encoder's largest convolution.
  """

  features: int
  kernel: int
  strides: int
  dtype: Any = jnp.float32
  weight_init: str = "lecun_normal"  # nn.Conv's own (see ``kernel_init``)

  @nn.compact
  def __call__(self, x: Array, c: Array) -> Array:
    x = x.astype(self.dtype)
    k, c_x, c_in = self.kernel, x.shape[-1], x.shape[-1] + c.shape[-1]
    w = self.param("kernel", kernel_init(self.weight_init), (k, k, c_in, self.features))
    b = self.param("bias", bias_init(self.weight_init, k * k * c_in), (self.features,))

    def correlate(inputs, kernel):
      return jax.lax.conv_general_dilated(inputs,
                                          kernel.astype(inputs.dtype), (self.strides,) * 2,
                                          "SAME",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))

    one_hot_images = jnp.broadcast_to(
        jnp.eye(c.shape[-1], dtype=x.dtype)[:, None, None, :],
        (c.shape[-1], *x.shape[1:3], c.shape[-1]))
    maps = correlate(one_hot_images, w[:, :, c_x:])  # [classes, H', W', features]
    label_part = jnp.einsum("bj,jhwf->bhwf", c.astype(x.dtype), maps)
    return correlate(x, w[:, :, :c_x]) + label_part + b.astype(x.dtype)


class ConvEncoder(nn.Module):
  """The report's table 1: conv 32-64-128, kernels 4/4/3, stride 2, then a linear head."""

  num_outputs: int
  head_init_scale: float = 1.0
  dtype: Any = jnp.float32
  weight_init: str = "fan_in_uniform"

  @nn.compact
  def __call__(self, x: Array, c: Array | None) -> Array:
    h = x
    for i, (features, kernel) in enumerate(((32, 4), (64, 4), (128, 3))):
      if i == 0 and c is not None:
        # The label as extra constant channels (the report, section 3.2.1).
        h = LabelChannelsConv(features, kernel, 2, self.dtype, self.weight_init, name="Conv_0")(h,
                                                                                                c)
      else:
        h = conv(features,
                 kernel,
                 h.shape[-1],
                 self.weight_init,
                 self.dtype,
                 strides=(2, 2),
                 name=f"Conv_{i}")(h)
      h = nn.relu(h)
    h = h.reshape(h.shape[0], -1)
    head = dense(self.num_outputs, h.shape[-1], self.weight_init, self.dtype, self.head_init_scale)
    return head(h).astype(jnp.float32)


class MLPDecoder(nn.Module):
  hidden: Sequence[int]
  output_shape: tuple[int, ...]
  dtype: Any = jnp.float32
  weight_init: str = "fan_in_uniform"
  activation: str = "relu"

  @nn.compact
  def __call__(self, z: Array, c: Array | None) -> Array:
    h = z if c is None else jnp.concatenate([z, c], axis=-1)
    for width in reversed(self.hidden):
      h = ACTIVATIONS[self.activation](dense(width, h.shape[-1], self.weight_init, self.dtype)(h))
    h = dense(math.prod(self.output_shape), h.shape[-1], self.weight_init, self.dtype)(h)
    h = h.astype(jnp.float32)
    return h.reshape(z.shape[0], *self.output_shape)


class ConvDecoder(nn.Module):
  """The report's table 2: linear to 4x4x128, then upsample to 7, 14 and 28 pixels."""

  output_shape: tuple[int, ...]
  upsampling: str = "subpixel"
  dtype: Any = jnp.float32
  weight_init: str = "fan_in_uniform"

  @nn.compact
  def __call__(self, z: Array, c: Array | None) -> Array:
    h = z if c is None else jnp.concatenate([z, c], axis=-1)
    h = nn.relu(dense(4 * 4 * 128, h.shape[-1], self.weight_init, self.dtype)(h))
    h = h.reshape(z.shape[0], 4, 4, 128)
    h = nn.relu(Upsample2x(64, 3, 7, self.upsampling, self.dtype, self.weight_init)(h))
    h = nn.relu(Upsample2x(32, 4, 14, self.upsampling, self.dtype, self.weight_init)(h))
    out = Upsample2x(self.output_shape[-1], 4, self.output_shape[0], self.upsampling, self.dtype,
                     self.weight_init)(h)
    return out.astype(jnp.float32)


_MAX_LOG_RATIO = 40.0  # a bounded parameter stays below bound * e^40 (~2e17 bound)


class LatentHead(nn.Module):
  """Maps features to a distribution of ``family`` through the family's default heads.

  Parameters in ``fixed`` (e.g. the Pareto scale x_m shared with the prior) are not predicted.
  A parameter in ``lower_bounds`` is predicted as ``bound * exp(softplus(raw))`` (capped at
  ``bound * e^40``), never below its bound: a learned Pareto scale x_q >= x_p keeps the KL to a
  Pareto(., x_p) prior finite.
  """

  family: str
  latent_dim: int
  fixed: Mapping[str, float]
  lower_bounds: Mapping[str, float] | None = None

  @nn.compact
  def __call__(self, raw: Array) -> D.Distribution:
    info = D.family_info(self.family)
    bounds = dict(self.lower_bounds or {})
    chunks = iter(jnp.split(raw, len(self.predicted), axis=-1))
    values = []
    for name in info.param_names:
      if name in self.fixed:
        values.append(jnp.full(raw.shape[:-1] + (self.latent_dim,), self.fixed[name], raw.dtype))
      elif name in bounds:
        # log(value / bound) = softplus(raw), capped at _MAX_LOG_RATIO so that extreme inputs
        # cannot overflow the value (and the KL) to inf; beyond the cap the gradient is 0.
        log_ratio = jnp.minimum(jax.nn.softplus(next(chunks)), _MAX_LOG_RATIO)
        values.append(bounds[name] * jnp.exp(log_ratio))
      else:
        values.append(D.apply_head(info.heads[name], next(chunks)))
    return info.cls(*values)

  @property
  def predicted(self) -> tuple[str, ...]:
    return tuple(n for n in D.family_info(self.family).param_names if n not in self.fixed)


class JointLatentHead(nn.Module):
  """Maps features to a joint family's distribution (full-covariance Gaussian, flows).

  ``options`` are the structure settings of ``distributions.joint`` (flow layers, IAF steps);
  parameters common to all examples (the IAF's MADE) are this module's ``shared`` parameter.
  """

  family: str
  latent_dim: int
  options: Mapping[str, int]

  @property
  def num_raw(self) -> int:
    return joint.joint_info(self.family).num_raw(self.latent_dim, dict(self.options))

  @nn.compact
  def __call__(self, raw: Array):
    info = joint.joint_info(self.family)
    options = dict(self.options)
    shared = None
    if info.init_shared is not None:
      shared = self.param("shared", lambda key: info.init_shared(key, self.latent_dim, options))
    return info.from_flat(raw, self.latent_dim, options, shared)


class LearnedPrior(nn.Module):
  """p(z | c): a small network from the one-hot label to the prior's parameters.

  Without a label it is a free, learnable parameter vector (the network sees a constant input).
  This is the guide's learnable conditional prior (section 5.2).
  """

  family: str
  latent_dim: int
  fixed: Mapping[str, float]
  hidden: int = 64
  joint_options: Mapping[str, int] | None = None
  weight_init: str = "fan_in_uniform"

  @nn.compact
  def __call__(self, c: Array) -> D.Distribution:
    h = nn.relu(dense(self.hidden, c.shape[-1], self.weight_init, jnp.float32)(c))
    if joint.is_joint_family(self.family):
      head = JointLatentHead(self.family, self.latent_dim, self.joint_options or {})
      return head(dense(head.num_raw, self.hidden, self.weight_init, jnp.float32)(h))
    head = LatentHead(self.family, self.latent_dim, self.fixed)
    return head(
        dense(self.latent_dim * len(head.predicted), self.hidden, self.weight_init, jnp.float32)(h))


class VAE(nn.Module):
  """Encoder, decoder and (optionally learned) prior for one latent family.

  Attributes:
    family: a registered latent family name.
    latent_dim: number of latent dimensions.
    num_classes: size of the one-hot label; 0 for an unconditional model.
    input_shape: the shape of one example, e.g. (28, 28, 1) or (2,).
    architecture: ``mlp`` or ``conv``.
    hidden: widths of the MLP layers.
    upsampling: the conv decoder's upsampling, ``subpixel`` or ``transpose``.
    prior: ``standard`` (fixed), ``learned`` (LearnedPrior), ``vamp`` (the VampPrior: an equal
      mixture of the posterior at ``prior_components`` learned pseudo-inputs, with the
      example's label for a CVAE) or ``mixture`` (a learnable mixture of ``prior_components``
      distributions of the latent family, weights learned too).
    prior_components: K of the ``vamp`` and ``mixture`` priors.
    fixed: parameters neither encoder nor prior predict.
    posterior_lower_bounds: parameters the encoder predicts after all, above a bound (a learned
      Pareto scale x_q >= x_p); the prior keeps them fixed.
    standard_prior_kwargs: arguments of the family's standard prior.
    head_init_scale: scale of the encoder's last-layer initialization (see ``kernel_init``).
    joint_options: structure of a joint family (``distributions.joint``: flow layers, IAF
      steps, MADE width, context size). A joint family's standard prior is N(0, I) (the multivariate t and
      symPareto: their own, ``standard_prior`` of the registry with df ``latent_df``); its learned
      prior is of the posterior's family where that density is tractable (full covariance),
      else a diagonal Gaussian (flows), and its mixture prior mixes diagonal Gaussians.
    weight_init: initialization of every layer's weights and biases (``kernel_init``,
      ``bias_init``).
    activation: the MLP's hidden-layer activation (``ACTIVATIONS``); other architectures use
      ReLU.
    sequence_feature: the sequence decoder's feature activation, ``sigmoid`` or ``relu``
      (``recurrent``; other architectures ignore it).
    dtype: compute dtype of the encoder and decoder networks (``bfloat16`` on accelerators);
      parameters stay float32, and the latent heads, densities, KLs and likelihoods are float32.
  """

  family: str
  latent_dim: int
  num_classes: int
  input_shape: tuple[int, ...]
  architecture: str = "mlp"
  hidden: Sequence[int] = (512, 256)
  upsampling: str = "subpixel"
  prior: str = "standard"
  fixed: Mapping[str, float] | None = None
  posterior_lower_bounds: Mapping[str, float] | None = None
  prior_components: int = 10
  standard_prior_kwargs: Mapping[str, float] | None = None
  head_init_scale: float = 1.0
  joint_options: Mapping[str, int] | None = None
  dtype: Any = jnp.float32
  weight_init: str = "fan_in_uniform"
  sequence_feature: str = "sigmoid"
  activation: str = "relu"

  @property
  def is_joint(self) -> bool:
    return joint.is_joint_family(self.family)

  @property
  def prior_family(self) -> str:
    """The family of the prior: the posterior's, except for flows (a Gaussian prior)."""
    if self.is_joint and joint.joint_info(self.family).log_prob is None:
      return "gaussian"
    return self.family

  def setup(self):
    fixed = dict(self.fixed or {})
    bounds = dict(self.posterior_lower_bounds or {})
    if self.is_joint:
      self.posterior_head = JointLatentHead(self.family, self.latent_dim,
                                            dict(self.joint_options or {}))
      num_raw = self.posterior_head.num_raw
    else:
      self.posterior_head = LatentHead(self.family, self.latent_dim, {
          k: v for k, v in fixed.items() if k not in bounds
      }, bounds)
      num_raw = self.latent_dim * len(self.posterior_head.predicted)
    if self.architecture not in ARCHITECTURES:
      raise ValueError(f"Unknown architecture '{self.architecture}'; valid choices: "
                       f"{', '.join(ARCHITECTURES)}.")
    self.encoder, self.decoder = ARCHITECTURES[self.architecture](self, num_raw)
    if self.prior == "learned":
      self.prior_net = LearnedPrior(self.prior_family,
                                    self.latent_dim,
                                    fixed,
                                    joint_options=self.joint_options,
                                    weight_init=self.weight_init)
    elif self.prior == "vamp":
      if self.is_joint:
        raise ValueError(f"--prior=vamp needs a factorized posterior family; '{self.family}' is "
                         "joint over the dimensions. Use --prior=mixture (Gaussian components) "
                         "or --prior=learned.")
      self.pseudo_inputs = self.param("pseudo_inputs", nn.initializers.uniform(1.0),
                                      (self.prior_components, *self.input_shape))
    elif self.prior == "mixture":
      # Components of the posterior's family; for a joint family, diagonal Gaussians.
      self.mixture_head = LatentHead(self.family if not self.is_joint else "gaussian",
                                     self.latent_dim, fixed)
      self.mixture_raw = self.param(
          "mixture_raw", nn.initializers.normal(1.0),
          (self.prior_components, self.latent_dim * len(self.mixture_head.predicted)))
      self.mixture_logits = self.param("mixture_logits", nn.initializers.zeros,
                                       (self.prior_components,))
    elif self.prior != "standard":
      raise ValueError(f"Unknown prior '{self.prior}'; valid choices: standard, learned, vamp, "
                       "mixture.")

  def one_hot(self, y: Array | None) -> Array | None:
    if self.num_classes == 0:
      return None
    return jax.nn.one_hot(y, self.num_classes)

  def encode(self, x: Array, y: Array | None = None) -> D.Distribution:
    # Shapes at the model's boundary, checked while tracing (free at run time): a batch of
    # examples of rank len(input_shape) (the encoder's input may carry extra channels), and
    # one label per example for a CVAE.
    chex.assert_rank(x, 1 + len(self.input_shape))
    self._check_labels(y, x.shape[0])
    return self.posterior_head(self.encoder(x, self.one_hot(y)))

  def decode(self, z: Array, y: Array | None = None, target: Array | None = None) -> Array:
    """The decoder's outputs; an autoregressive decoder (``teacher_forced``) is fed the true
    ``target`` (teacher forcing) when given one, and runs free without."""
    chex.assert_axis_dimension(z, -1, self.latent_dim)
    self._check_labels(y, z.shape[0])
    if getattr(self.decoder, "teacher_forced", False):
      return self.decoder(z, self.one_hot(y), target)
    return self.decoder(z, self.one_hot(y))

  def _check_labels(self, y: Array | None, batch: int) -> None:
    if self.num_classes and y is None:
      raise ValueError("This is a conditional model (num_classes > 0): pass the labels y.")
    if self.num_classes:
      chex.assert_shape(y, (batch,))

  def prior_dist(self, y: Array | None, batch: int) -> D.Distribution | mixture.Mixture:
    if self.prior == "learned":
      c = self.one_hot(y)
      return self.prior_net(jnp.ones((batch, 1)) if c is None else c)
    if self.prior in ("vamp", "mixture"):
      k = self.prior_components
      if self.prior == "vamp":
        u, c = self.pseudo_inputs, self.one_hot(y)
        if c is None:
          components = self.posterior_head(self.encoder(u, None))
        else:  # p(z | c) = mean_k q(z | u_k, c): every pseudo-input under the example's label
          u = jnp.broadcast_to(u[None], (batch, *u.shape)).reshape(batch * k, *u.shape[1:])
          components = self.posterior_head(self.encoder(u, jnp.repeat(c, k, axis=0)))
        logits = jnp.zeros((k,))
      else:
        components, logits = self.mixture_head(self.mixture_raw), self.mixture_logits
      # [K, D] (shared by the batch) or [batch * K, D] -> [batch, K, D].
      components = jax.tree.map(
          lambda v: jnp.broadcast_to(v.reshape(-1, k, self.latent_dim),
                                     (batch, k, self.latent_dim)), components)
      return mixture.Mixture(jnp.broadcast_to(logits, (batch, k)), components)
    if self.is_joint:
      info = D.family_info(self.family)
      if info.standard_prior is not None:  # the multivariate t and symPareto: their own, df nu
        return info.standard_prior((batch, self.latent_dim), dict(self.joint_options or {}))
      return D.family_info("gaussian").standard_prior((batch, self.latent_dim))  # N(0, I)
    info = D.family_info(self.family)
    return info.standard_prior((batch, self.latent_dim), **dict(self.standard_prior_kwargs or {}))

  def __call__(self, x: Array, y: Array | None = None):
    """Initialization path: touches every submodule once."""
    q = self.encode(x, y)
    p = self.prior_dist(y, x.shape[0])
    return q, p, self.decode(jnp.zeros((x.shape[0], self.latent_dim), x.dtype), y)


# ------------------------------------------------------------------------------------------------
# Architectures: a name of ``config.architecture`` -> (encoder, decoder) for a ``VAE``.


def _mlp(vae: VAE, num_raw: int) -> tuple[nn.Module, nn.Module]:
  return (MLPEncoder(vae.hidden, num_raw, vae.head_init_scale, vae.dtype, vae.weight_init,
                     vae.activation),
          MLPDecoder(vae.hidden, vae.input_shape, vae.dtype, vae.weight_init, vae.activation))


def _conv(vae: VAE, num_raw: int) -> tuple[nn.Module, nn.Module]:
  return (ConvEncoder(num_raw, vae.head_init_scale, vae.dtype, vae.weight_init),
          ConvDecoder(vae.input_shape, vae.upsampling, vae.dtype, vae.weight_init))


ARCHITECTURES: dict[str, Any] = {}

# Architectures over sequences [T, d] (``recurrent``), whose decoder takes the target sequence.
SEQUENCE_ARCHITECTURES: set[str] = set()


def register_architecture(name: str, build, *, sequences: bool = False) -> None:
  """Makes ``build(vae, num_raw) -> (encoder, decoder)`` the architecture ``name``.

  With ``sequences`` it is for sequence data (``sequences``), and its decoder is called as
  ``decoder(z, label, target)``: teacher-forced on ``target``, free-running for None.

  The encoder maps ``(x, one_hot_label_or_None)`` to ``num_raw`` outputs per example (the latent
  head's inputs); the decoder maps ``(z, one_hot_label_or_None)`` to the likelihood's
  parameters, of the input's shape. ``build`` reads what it needs from the ``VAE`` (``hidden``,
  ``input_shape``, ``dtype``, ``weight_init``, ...).
  """
  if name in ARCHITECTURES:
    raise ValueError(f"Architecture '{name}' is already registered.")
  ARCHITECTURES[name] = build
  if sequences:
    SEQUENCE_ARCHITECTURES.add(name)


register_architecture("mlp", _mlp)
register_architecture("conv", _conv)
