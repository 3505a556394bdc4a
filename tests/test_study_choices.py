"""The heavy-tail study's own network choices (its sections 3.1-3.2 and eq. 3): LeakyReLU 0.01,
MATLAB's Glorot initialization and MATLAB's ``mse``, each against a plain reference."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny
from pareto_vae_jax import vae


def _spec(**overrides):
  config = tiny.config(latent="gaussian", conditional=False, hidden=(64, 32), **overrides)
  return vae.VAESpec.from_config(config, input_shape=(28, 28, 1), num_classes=0)


def test_glorot_uniform_weights_fill_their_bound_uniformly_and_biases_are_zero():
  params = _spec(weight_init="glorot_uniform").init(jax.random.key(0))["params"]
  w = np.asarray(params["encoder"]["Dense_0"]["kernel"])
  b = np.asarray(params["encoder"]["Dense_0"]["bias"])
  fan_in, fan_out = w.shape
  bound = math.sqrt(6.0 / (fan_in + fan_out))  # Glorot & Bengio 2010, eq. 16
  assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
  # U(-a, a) has variance a^2 / 3; its sample variance over n draws has s.e. ~ var * sqrt(0.8 / n).
  var = bound**2 / 3
  assert abs(w.var() - var) < 5 * var * math.sqrt(0.8 / w.size)
  np.testing.assert_array_equal(b, np.zeros_like(b))


def test_leaky_relu_mlp_matches_a_numpy_forward_pass_and_differs_from_relu():
  spec = _spec(activation="leaky_relu")
  params = spec.init(jax.random.key(1))
  x = np.random.default_rng(0).normal(size=(5, 28, 28, 1)).astype(np.float32)
  out = spec.model.apply(params, jnp.asarray(x), method=lambda m, x: m.encoder(x, None))

  enc = jax.tree.map(np.asarray, params["params"]["encoder"])
  h = x.reshape(5, -1).astype(np.float64)
  for i in range(2):
    h = h @ enc[f"Dense_{i}"]["kernel"] + enc[f"Dense_{i}"]["bias"]
    h = np.where(h > 0, h, 0.01 * h)
  h = h @ enc["Dense_2"]["kernel"] + enc["Dense_2"]["bias"]
  np.testing.assert_allclose(out, h, rtol=2e-4, atol=2e-5)

  relu = _spec().model.apply(params, jnp.asarray(x), method=lambda m, x: m.encoder(x, None))
  assert np.abs(np.asarray(relu) - h).max() > 1e-3  # the negative slope changes the output


def test_matlab_mse_is_half_the_summed_squared_error_and_the_loss_halves_it_again():
  spec = _spec(likelihood="matlab_mse")
  rng = np.random.default_rng(2)
  out, x = rng.random((3, 28, 28, 1)), rng.random((3, 28, 28, 1))
  # MATLAB: loss = 1 / (2N) sum_i (X_i - T_i)^2 over all responses of N observations; per example
  # (N = 1) half the summed squared error.
  expected = -0.5 * ((out - x)**2).reshape(3, -1).sum(-1)
  np.testing.assert_allclose(
      vae.reconstruction_log_likelihood(spec, jnp.asarray(out), jnp.asarray(x)), expected,
      rtol=1e-5)
  assert spec.loss_scale == 0.5  # the study's eq. 3: 1/2 (MSE + beta KL)


@pytest.mark.parametrize("overrides, message", [
    ({"activation": "tanh"}, "Unknown activation 'tanh'; valid: relu, leaky_relu"),
    ({"activation": "leaky_relu", "architecture": "conv"}, "mlp architecture only"),
])
def test_bad_activation_settings_name_the_fix(overrides, message):
  with pytest.raises(ValueError, match=message):
    _spec(**overrides)


def test_weight_decay_is_pytorch_adams_coupled_l2_against_a_numpy_adam_loop():
  """t3VAE's runs use ``torch.optim.Adam(weight_decay=1e-4)``: the decay joins the gradient before
  Adam's moments. A numpy Adam loop with that rule is the reference."""
  from pareto_vae_jax import config as config_lib
  from pareto_vae_jax import train
  config = config_lib.get_config()
  config.learning_rate, config.weight_decay, config.grad_clip = 1e-2, 0.1, 1e6
  tx = train.make_optimizer(config)
  rng = np.random.default_rng(0)
  p = rng.normal(size=5)
  grads = rng.normal(size=(4, 5))
  params, state = jnp.asarray(p, jnp.float32), tx.init(jnp.asarray(p, jnp.float32))
  m, v, ref = np.zeros(5), np.zeros(5), p.copy()
  b1, b2, eps = 0.9, 0.999, 1e-8
  for t, g in enumerate(grads, start=1):
    updates, state = tx.update(jnp.asarray(g, jnp.float32), state, params)
    params = params + updates
    g = g + 0.1 * ref  # the coupled L2 term
    m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    ref = ref - 1e-2 * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
  np.testing.assert_allclose(np.asarray(params), ref, rtol=1e-5, atol=1e-6)
  config.weight_decay = 0.0  # without decay the same gradients give a different trajectory
  tx0 = train.make_optimizer(config)
  q, s0 = jnp.asarray(p, jnp.float32), tx0.init(jnp.asarray(p, jnp.float32))
  for g in grads:
    u, s0 = tx0.update(jnp.asarray(g, jnp.float32), s0, q)
    q = q + u
  assert np.abs(np.asarray(q) - ref).max() > 1e-4
