"""``config.dtype = bfloat16``: networks compute in bfloat16, parameters and densities stay float32.

The reference is the same model in float32 with the same parameters and keys; bfloat16 keeps 8
bits of mantissa, so each activation carries a relative error near 2^-9 and the test ELBO (a sum
over 784 pixels) moves by a small fraction of a nat, far below its standard error.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pareto_vae_jax import data as data_lib
from pareto_vae_jax import train
from pareto_vae_jax import vae

import tiny


def _mnist_like():
  x = tiny.mnist_like(512)
  x = (x > 0.7).astype(np.float32) * x  # mostly black, as MNIST
  y = np.arange(512, dtype=np.int32) % 10
  return data_lib.Dataset(train_x=x[:384], train_y=y[:384], test_x=x[384:], test_y=y[384:],
                          num_classes=10, input_shape=(28, 28, 1), name="mnist",
                          source="random pixels")


@pytest.mark.parametrize("architecture", ["mlp", "conv"])
def test_bfloat16_compute_gives_the_float32_elbo_within_a_tenth_of_a_percent(architecture):
  ds = _mnist_like()
  overrides = dict(dataset="mnist", likelihood="bernoulli", architecture=architecture,
                   latent="pareto", conditional=True, latent_dim=4, batch_size=32,
                   hidden=(64,), warmup_epochs=0.0)
  f32, bf16 = tiny.config(**overrides), tiny.config(**overrides, dtype="bfloat16")
  model, tx = vae.VAESpec.from_config(f32, ds), train.make_optimizer(f32)
  state = train.init_state(model, tx, f32)
  step = jax.jit(train.make_train_step(model, tx, f32, steps_per_epoch=12))
  for i in range(12):  # move away from the initialization
    idx = jnp.arange(32 * i, 32 * (i + 1))
    state, _ = step(state, {"x": ds.train_x[idx], "y": ds.train_y[idx], "index": idx},
                    state.rng)
  results = {}
  for name, config in (("f32", f32), ("bf16", bf16)):
    eval_fn = vae.make_eval_fn(vae.VAESpec.from_config(config, ds), 4)
    results[name] = vae.evaluate(eval_fn, state.params, ds.test_x, ds.test_y, 64,
                                 jax.random.key(0))
  for metric in ("elbo", "iwae"):
    a, b = results["f32"][metric], results["bf16"][metric]
    assert abs(a - b) <= 1e-3 * abs(a), (metric, a, b)
    assert abs(a - b) < results["f32"][metric + "_stderr"], (metric, a, b)


def test_bfloat16_training_keeps_float32_parameters_and_computes_in_bfloat16():
  ds = _mnist_like()
  config = tiny.config(dataset="mnist", likelihood="bernoulli", architecture="conv",
                       latent="gaussian", conditional=True, latent_dim=2, batch_size=32,
                       dtype="bfloat16")
  model, tx = vae.VAESpec.from_config(config, ds), train.make_optimizer(config)
  state = train.init_state(model, tx, config)
  idx = jnp.arange(32)
  batch = {"x": ds.train_x[idx], "y": ds.train_y[idx], "index": idx}
  hlo = jax.jit(train.make_train_step(model, tx, config, steps_per_epoch=12)).lower(
      state, batch, state.rng).as_text()
  assert "bf16" in hlo and "convolution" in hlo
  new_state, metrics = jax.jit(train.make_train_step(model, tx, config, steps_per_epoch=12))(
      state, batch, state.rng)
  assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(new_state.params))
  assert np.isfinite(float(metrics["loss"]))


def test_unknown_dtype_is_refused_with_the_valid_choices():
  with pytest.raises(ValueError, match="float32, bfloat16"):
    vae.VAESpec.from_config(tiny.config(dtype="float16"), input_shape=(2,), num_classes=0)
