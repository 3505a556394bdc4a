"""Registered parts: a new encoder/decoder pair (``models.register_architecture``) or likelihood
(``vae.register_likelihood``) is one entry, usable by name."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import tiny
from pareto_vae_jax import models, train, vae


class _LinearEncoder(nn.Module):
  num_raw: int

  @nn.compact
  def __call__(self, x, c):
    h = x.reshape(x.shape[0], -1)
    return nn.Dense(self.num_raw)(h if c is None else jnp.concatenate([h, c], -1))


class _LinearDecoder(nn.Module):
  shape: tuple[int, ...]

  @nn.compact
  def __call__(self, z, c):
    h = z if c is None else jnp.concatenate([z, c], -1)
    return nn.Dense(math.prod(self.shape))(h).reshape(z.shape[0], *self.shape)


@pytest.fixture
def linear_architecture():
  models.register_architecture(
      "linear", lambda m, num_raw: (_LinearEncoder(num_raw), _LinearDecoder(m.input_shape)))
  yield "linear"
  del models.ARCHITECTURES["linear"]


def test_a_registered_architecture_trains_by_name(linear_architecture):
  ds = tiny.small_dataset("synthetic_lognormal", 256, 64)
  config = tiny.config(architecture=linear_architecture, conditional=True, latent="gaussian",
                       likelihood="gaussian", decoder_input="log")
  spec = vae.VAESpec.from_config(config, ds)
  tx = train.make_optimizer(config)
  state = train.init_state(spec, tx, config)
  # Exactly the linear maps' parameters: 2 -> 2 * latent_dim (+ the 2 labels), and back.
  kernels = {k: state.params["params"][k]["Dense_0"]["kernel"].shape
             for k in ("encoder", "decoder")}
  assert kernels == {"encoder": (2 + 2, 2 * config.latent_dim),
                     "decoder": (config.latent_dim + 2, 2)}
  step = jax.jit(train.make_train_step(spec, tx, config, steps_per_epoch=4))
  idx = jnp.arange(32)
  batch = {"x": jnp.asarray(ds.train_x[idx]), "y": jnp.asarray(ds.train_y[idx]), "index": idx}
  state, metrics = step(state, batch, state.rng)
  assert jnp.isfinite(metrics["loss"])


def test_an_unknown_architecture_names_the_registered_ones():
  spec = vae.VAESpec.from_config(tiny.config(architecture="nope"), input_shape=(2,),
                                 num_classes=0)
  with pytest.raises(ValueError, match="valid choices: mlp, conv"):
    spec.init(jax.random.key(0))


def test_a_name_cannot_be_registered_twice():
  with pytest.raises(ValueError, match="already registered"):
    models.register_architecture("mlp", lambda m, n: None)


def test_a_registered_likelihood_is_used_by_name():
  # A Laplace reconstruction term: log p(x | z) = -sum |x - out| - D log 2.
  import numpy as np
  vae.register_likelihood("unit_laplace", vae.Likelihood(
      lambda spec, out, x: -jnp.sum(jnp.abs(x - out), -1) - x.shape[-1] * jnp.log(2.0)))
  try:
    config = tiny.config(likelihood="unit_laplace", latent="gaussian")
    spec = vae.VAESpec.from_config(config, input_shape=(2,), num_classes=0)
    out, x = jnp.array([[0.5, 1.0]]), jnp.array([[1.0, 3.0]])
    np.testing.assert_allclose(vae.reconstruction_log_likelihood(spec, out, x),
                               [-2.5 - 2 * np.log(2.0)], rtol=1e-6)
    assert spec.loss_scale == 1.0
  finally:
    del vae.LIKELIHOODS["unit_laplace"]
  with pytest.raises(ValueError,
                     match="valid: bernoulli, gaussian, laplace, mse, matlab_mse, sequence, "
                     "student_t, symmetric_pareto, sse"):
    vae.VAESpec.from_config(config, input_shape=(2,), num_classes=0)
