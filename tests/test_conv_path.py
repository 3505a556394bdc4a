"""The conv model's training path on CPU: straight-line steps, and the exact sub-pixel form of the
report's transposed convolutions.

XLA:CPU runs convolutions inside a while loop (``lax.scan``) tens of times slower than in
straight-line code (docs/benchmarks.md), so the trainer writes conv steps out on CPU. These tests
read the compiled HLO of the runner the trainer builds and fail if a convolution lands inside a
loop again.
"""

from __future__ import annotations

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pareto_vae_jax import data as data_lib
from pareto_vae_jax import chunks
from pareto_vae_jax import models
from pareto_vae_jax import multihost
from pareto_vae_jax import train
from pareto_vae_jax import vae

import tiny

_CALLED = re.compile(r"(?:body|condition|calls|to_apply|true_computation|false_computation|"
                     r"branch_computations)=(%[\w.\-]+|\{[^}]*\})")


def _computations(hlo: str) -> dict[str, str]:
  """Computation name -> its text, from an HLO module's text."""
  comps, name, lines = {}, None, []
  for line in hlo.splitlines():
    header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
    if header and not line.startswith(" "):
      name, lines = header.group(1), []
    elif line.startswith("}") and name is not None:
      comps[name] = "\n".join(lines)
      name = None
    elif name is not None:
      lines.append(line)
  return comps


def _names(group: str) -> list[str]:
  return [n.strip(" {}%") for n in group.split(",")]


def convolutions_inside_loops(hlo: str) -> int:
  """How many convolutions the compiled module runs inside a while loop's body or condition."""
  comps = _computations(hlo)
  seen, stack = set(), []
  for text in comps.values():
    for line in text.splitlines():
      if " while(" in line:
        for group in _CALLED.findall(line):
          stack += _names(group)
  while stack:
    name = stack.pop()
    if name in seen or name not in comps:
      continue
    seen.add(name)
    for group in _CALLED.findall(comps[name]):
      stack += _names(group)
  return sum(comps[n].count(" convolution(") for n in seen)


def _compiled_runner_hlo(config, ds, chunk: int, straight_line: bool) -> str:
  model, tx = vae.VAESpec.from_config(config, ds), train.make_optimizer(config)
  step = train.make_train_step(model, tx, config, steps_per_epoch=4)
  state = train.init_state(model, tx, config)
  run = train.make_chunk_runner(step, multihost.global_mesh(), straight_line=straight_line)
  data = {"x": jnp.asarray(ds.train_x), "y": jnp.asarray(ds.train_y)}
  indices = jnp.arange(chunk * config.batch_size).reshape(chunk, config.batch_size)
  return run.lower(state, data, indices).compile().as_text()


@pytest.fixture(scope="module")
def conv_setup():
  x = tiny.mnist_like(64)
  y = np.arange(64, dtype=np.int32) % 10
  ds = data_lib.Dataset(train_x=x, train_y=y, test_x=x[:16], test_y=y[:16], num_classes=10,
                        input_shape=(28, 28, 1), name="mnist", source="random pixels")
  config = tiny.config(dataset="mnist", likelihood="bernoulli", architecture="conv",
                       latent="gaussian", conditional=True, batch_size=8, latent_dim=2)
  return config, ds


@pytest.mark.parametrize("upsampling", ["transpose", "subpixel"])
def test_trainer_runs_conv_steps_on_cpu_without_a_loop_around_convolutions(conv_setup, upsampling):
  config, ds = conv_setup
  config.upsampling = upsampling
  assert jax.default_backend() == "cpu"
  assert chunks.uses_straight_line(config)
  assert chunks.steps_per_dispatch(config, 100) == 1
  for chunk in (1, 3):  # the default, and a user's steps_per_dispatch = 3
    hlo = _compiled_runner_hlo(config, ds, chunk, chunks.uses_straight_line(config))
    assert hlo.count(" convolution(") >= chunk * 6, "the step should hold the model's convolutions"
    assert convolutions_inside_loops(hlo) == 0


def test_loop_check_finds_convolutions_in_a_scanned_runner(conv_setup):
  # The check above must be able to fail: the scanned form puts every convolution in the loop.
  config, ds = conv_setup
  hlo = _compiled_runner_hlo(config, ds, 3, straight_line=False)
  assert convolutions_inside_loops(hlo) >= 6


def test_mlp_scans_a_tenth_of_an_epoch_per_call():
  config = tiny.config()
  assert not chunks.uses_straight_line(config)
  assert chunks.steps_per_dispatch(config, 468) == 52  # 9 equal chunks: one compilation
  config.chunks_per_epoch = 1
  assert chunks.steps_per_dispatch(config, 468) == 468


def test_straight_line_and_scanned_chunks_take_the_same_steps(conv_setup):
  config, ds = conv_setup
  model, tx = vae.VAESpec.from_config(config, ds), train.make_optimizer(config)
  step = train.make_train_step(model, tx, config, steps_per_epoch=4)
  data = {"x": jnp.asarray(ds.train_x), "y": jnp.asarray(ds.train_y)}
  indices = jnp.arange(3 * 8).reshape(3, 8)
  results = []
  for straight in (True, False):
    state = train.init_state(model, tx, config)
    run = train.make_chunk_runner(step, multihost.global_mesh(), straight_line=straight)
    results.append(run(state, data, indices))
  (s1, m1), (s2, m2) = results
  assert m1["loss"].shape == m2["loss"].shape == (3,)
  np.testing.assert_allclose(m1["loss"], m2["loss"], rtol=1e-5)
  # Adam moves a parameter whose gradient is round-off sized by up to lr per step either way.
  for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=3 * config.learning_rate)


@pytest.mark.parametrize("kernel,size", [(3, 4), (4, 7), (4, 14), (2, 5), (5, 1), (5, 6)])
def test_conv_transpose_2x_is_flax_conv_transpose(kernel, size):
  x = jax.random.normal(jax.random.key(1), (3, size, size, 5))
  reference = nn.ConvTranspose(6, (kernel, kernel), strides=(2, 2), padding="SAME")
  ours = models.ConvTranspose2x(6, kernel)
  params = reference.init(jax.random.key(0), x)
  # Same parameter names, shapes and initial values: checkpoints and init carry over.
  jax.tree.map(np.testing.assert_array_equal, ours.init(jax.random.key(0), x), params)
  params = jax.tree.map(lambda p: p + jax.random.normal(jax.random.key(2), p.shape), params)
  np.testing.assert_allclose(ours.apply(params, x), reference.apply(params, x), atol=2e-5)

  def grads(module):
    return jax.grad(lambda p, x: jnp.sum(jnp.sin(module.apply(p, x))), argnums=(0, 1))(params, x)

  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=5e-5),
               grads(ours), grads(reference))


def test_transpose_decoder_has_table_2_shapes():
  decoder = models.ConvDecoder((28, 28, 1), "transpose")
  z = jnp.zeros((2, 2))
  params = decoder.init(jax.random.key(0), z, None)
  kernels = [v["kernel"].shape for k, v in sorted(params["params"].items()) if "Upsample" in k
             for v in [v["ConvTranspose_0"]]]
  assert kernels == [(3, 3, 128, 64), (4, 4, 64, 32), (4, 4, 32, 1)]
  assert decoder.apply(params, z, None).shape == (2, 28, 28, 1)


def test_label_channels_conv_is_flax_conv_over_the_concatenated_label():
  x = jax.random.uniform(jax.random.key(1), (6, 28, 28, 1))
  c = jax.nn.one_hot(jnp.array([0, 3, 9, 9, 5, 1]), 10)
  stacked = jnp.concatenate([x, jnp.broadcast_to(c[:, None, None, :], (6, 28, 28, 10))], -1)
  reference = nn.Conv(32, (4, 4), strides=(2, 2), padding="SAME")
  ours = models.LabelChannelsConv(32, 4, 2)
  params = reference.init(jax.random.key(0), stacked)
  jax.tree.map(np.testing.assert_array_equal, ours.init(jax.random.key(0), x, c), params)
  params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.key(2), p.shape), params)
  np.testing.assert_allclose(ours.apply(params, x, c), reference.apply(params, stacked),
                             atol=2e-5)
  g_ours = jax.grad(lambda p: jnp.sum(jnp.sin(ours.apply(p, x, c))))(params)
  g_ref = jax.grad(lambda p: jnp.sum(jnp.sin(reference.apply(p, stacked))))(params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=5e-5), g_ours, g_ref)


def test_one_step_chunks_draw_each_epoch_order_once(tmp_path, monkeypatch):
  # With one step per call (conv on CPU) the loop runs a chunk per step; drawing the epoch's
  # permutation at every chunk cost more than the step itself.
  calls = []
  permutation = data_lib.epoch_permutation
  monkeypatch.setattr(data_lib, "epoch_permutation",
                      lambda *args: calls.append(args) or permutation(*args))
  ds = tiny.small_dataset("synthetic_lognormal", 256, 64)
  tiny.patch_dataset(monkeypatch, ds)
  config = tiny.config(steps_per_dispatch=1, num_epochs=2)
  train.fit(config, str(tmp_path / "run"))
  assert [args[1] for args in calls] == [0, 1]


def _reference_chunk_end(step, steps_per_epoch, dispatch, every, halt, profile):
  """Walks forward one step at a time to the first place a chunk must end."""
  offset = step % steps_per_epoch
  for end in range(offset + 1, steps_per_epoch + 1):
    at = step + end - offset  # the global step after the chunk
    if (end == steps_per_epoch or end % dispatch == 0 or (every and at % every == 0)
        or (halt and at == halt) or (profile and at in profile)):
      return end
  raise AssertionError("unreachable")


@pytest.mark.parametrize("every, halt, profile, dispatch",
                         [(0, 0, None, 0), (7, 0, None, 0), (0, 23, None, 5), (6, 0, (9, 13), 4),
                          (5, 17, (2, 3), 1), (0, 0, None, 12)])
def test_chunks_end_where_a_step_by_step_walk_says(every, halt, profile, dispatch):
  config = tiny.config(checkpoint_every_steps=every, halt_after_steps=halt,
                       steps_per_dispatch=dispatch, chunks_per_epoch=3)
  steps_per_epoch = 12
  size = chunks.steps_per_dispatch(config, steps_per_epoch)
  assert size == (dispatch or 4)
  step, saved = 0, []
  while step < 3 * steps_per_epoch and not (halt and step >= halt):
    end = chunks.chunk_end(config, step, steps_per_epoch, profile)
    assert end == _reference_chunk_end(step, steps_per_epoch, size, every, halt, profile)
    step += end - step % steps_per_epoch
    if chunks.saves_after(config, step, steps_per_epoch):
      saved.append(step)
  expected = [s for s in range(1, 3 * steps_per_epoch + 1) if s % 12 == 0
              or (every and s % every == 0) or (halt and s == halt)]
  assert saved == [s for s in expected if not halt or s <= halt]


def test_chunk_length_prefers_a_divisor_near_the_target():
  assert chunks.chunk_length(468, 10) == 52 and chunks.chunk_length(467, 10) == 47
  assert chunks.chunk_length(100, 10) == 10 and chunks.chunk_length(5, 10) == 1
  assert chunks.chunk_length(468, 0) == chunks.chunk_length(468, 1) == 468
