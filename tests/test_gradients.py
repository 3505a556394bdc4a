"""Pathwise gradients of E[f(z)] against the derivative of the known expectation.

Per-sample derivatives come from one forward-mode pass; their mean estimates the gradient of
the expectation and their standard deviation gives the Monte Carlo standard error.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from pareto_vae_jax.distributions import inverse_gaussian

N = 200_000
KEY = jax.random.key(11)


def per_sample_derivative(sample_fn, f, params, index):
  """d f(z_i) / d params[index] for every draw z_i, by a forward-mode JVP."""
  tangents = [jnp.zeros_like(p) for p in params]
  tangents[index] = jnp.ones_like(params[index])
  _, d = jax.jvp(lambda *ps: f(sample_fn(*ps)), tuple(params), tuple(tangents))
  return np.asarray(d, np.float64)


def assert_within_standard_errors(draws, expected, k=4.0):
  mean, stderr = draws.mean(), draws.std() / np.sqrt(draws.size)
  assert abs(mean - expected) < k * stderr + 1e-6, (mean, stderr, expected)


CASES = [
    # (family, params, f, [d E f / d param_i for each parameter])
    (pvj.Gaussian, (0.7, 1.3), jnp.square, lambda m, s: [2 * m, 2 * s]),
    (pvj.LogNormal, (0.2, 0.5), lambda z: z,
     lambda m, s: [np.exp(m + s * s / 2), s * np.exp(m + s * s / 2)]),
    # The guide's lemma: E[log z] = log x_m + 1/alpha.
    (pvj.Pareto, (0.4, 2.0), jnp.log, lambda a, x: [-1 / a ** 2, 1 / x]),
    (pvj.Pareto, (6.0, 1.5), lambda z: z, lambda a, x: [-x / (a - 1) ** 2, a / (a - 1)]),
    (pvj.InverseGaussian, (1.5, 0.8), lambda z: z, lambda m, l: [1.0, 0.0]),
    (pvj.InverseGaussian, (1.5, 0.8), lambda z: 1 / z, lambda m, l: [-1 / m ** 2, -1 / l ** 2]),
    (pvj.InverseGaussian, (0.3, 9.0), lambda z: 1 / z, lambda m, l: [-1 / m ** 2, -1 / l ** 2]),
]


@pytest.mark.parametrize("family,params,f,grads", CASES,
                         ids=[f"{c[0].__name__}{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_pathwise_gradient_matches_derivative_of_known_expectation(family, params, f, grads):
  params = [jnp.float32(p) for p in params]
  sample = lambda *ps: pvj.rsample(KEY, family(*ps), (N,))
  for index, expected in enumerate(grads(*params)):
    assert_within_standard_errors(per_sample_derivative(sample, f, params, index), expected)


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


def test_grad_reaches_every_parameter_of_every_family():
  for dist in (pvj.Gaussian(0.3, 1.2), pvj.LogNormal(0.3, 1.2), pvj.Pareto(1.3, 1.2),
               pvj.InverseGaussian(0.3, 1.2)):
    grads = jax.grad(lambda d: jnp.mean(jnp.tanh(pvj.rsample(KEY, d, (256,)))))(dist)
    for name, g in zip(dist.param_names, grads.params):
      assert np.isfinite(g) and g != 0, (type(dist).__name__, name, g)
