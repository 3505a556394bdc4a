"""Pathwise gradients of E[f(z)] against the derivative of the known expectation.

Per-sample derivatives come from one forward-mode pass; their mean estimates the gradient of
the expectation and their standard deviation gives the Monte Carlo standard error. The
expectations of every registered family are in tests/family_cases.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from family_cases import CASES, per_case
from pareto_vae_jax.distributions import inverse_gaussian

N = 200_000
KEY = jax.random.key(11)
M = 4096  # draws whose mean is differentiated


def per_sample_derivative(sample_fn, f, params, index):
  """d f(z_i) / d params[index] for every draw z_i, by a forward-mode JVP."""
  tangents = [jnp.zeros_like(p) for p in params]
  tangents[index] = jnp.ones_like(params[index])
  _, d = jax.jvp(lambda *ps: f(sample_fn(*ps)), tuple(params), tuple(tangents))
  return np.asarray(d, np.float64)


def assert_within_standard_errors(draws, expected, k=4.0):
  mean, stderr = draws.mean(), draws.std() / np.sqrt(draws.size)
  assert abs(mean - expected) < k * stderr + 1e-6, (mean, stderr, expected)


GRADIENTS = per_case("gradients")


@pytest.mark.parametrize("case", GRADIENTS, ids=[
    f"{n}{CASES[n].gradients[i].params}-{i}" for n, i in GRADIENTS])
def test_pathwise_gradient_matches_derivative_of_known_expectation(case):
  name, index = case
  gradient, cls = CASES[name].gradients[index], pvj.family_info(name).cls
  params = [jnp.float32(p) for p in gradient.params]
  sample = lambda *ps: gradient.sampler(KEY, cls(*ps), (gradient.n,))
  for i, expected in enumerate(gradient.grads(*(float(p) for p in params))):
    if expected is not None:
      assert_within_standard_errors(per_sample_derivative(sample, gradient.f, params, i),
                                    expected)


@pytest.mark.parametrize("name", pvj.family_names())
def test_grad_reaches_every_parameter_through_rsample_and_log_prob(name):
  dist = CASES[name].grad_point

  @jax.jit
  def grads(dist):
    z = jax.lax.stop_gradient(pvj.rsample(KEY, dist, (3,)))  # inside the support
    draws = jax.grad(lambda d: jnp.mean(jnp.tanh(pvj.rsample(KEY, d, (M,)))))(dist)
    density = jax.grad(lambda d: jnp.sum(pvj.log_prob(d, z)))(dist)
    return draws, density

  draws, density = grads(dist)
  for param, g_draw, g_density in zip(dist.param_names, draws.params, density.params):
    assert np.isfinite(g_draw) and g_draw != 0, (name, param, g_draw)
    assert np.isfinite(g_density) and g_density != 0, (name, param, g_density)


def test_inverse_gaussian_gradient_is_unbiased_where_the_branch_gradient_is_not():
  mu, lam = jnp.float32(2.0), jnp.float32(0.5)
  key_n, key_u = jax.random.split(KEY)
  y = jnp.square(jax.random.normal(key_n, (N,)))
  u = jax.random.uniform(key_u, (N,))
  implicit = lambda m: jnp.exp(inverse_gaussian._ig_log_sample(jnp.full((N,), m), lam, y, u))
  naive = lambda m: jnp.exp(inverse_gaussian._msh_log(m, lam, y, u))
  # Same draws either way; only the derivative rule differs.
  np.testing.assert_allclose(implicit(mu), naive(mu), rtol=1e-6)
  d_implicit = np.asarray(jax.jvp(implicit, (mu,), (1.0,))[1], np.float64)
  d_naive = np.asarray(jax.jvp(naive, (mu,), (1.0,))[1], np.float64)
  # d E[z] / d mu = 1.
  assert_within_standard_errors(d_implicit, 1.0)
  bias = d_naive.mean() - 1.0
  assert abs(bias) > 10 * d_naive.std() / np.sqrt(N), bias


def test_inverse_gaussian_log_gradients_satisfy_the_scaling_identity():
  # c Z ~ IG(c mu, c lam) makes log z - log c invariant, so mu d/dmu + lam d/dlam of log z = 1.
  mu = jnp.array([0.01, 1.0, 50.0, 3.0])
  lam = jnp.array([5.0, 1.0, 0.1, 3000.0])
  log_z = pvj.rsample_log(KEY, pvj.InverseGaussian(mu, lam), (64,))
  g_mu, g_lam = inverse_gaussian._implicit_log_grads(mu, lam, log_z)
  np.testing.assert_allclose(mu * g_mu + lam * g_lam, 1.0, rtol=1e-4, atol=1e-4)
