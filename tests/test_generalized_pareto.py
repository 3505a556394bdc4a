"""Generalized Pareto cases beyond the registry-parametrized tests: the support's ends for both
signs of xi, continuity through the exponential at xi = 0, the Pareto type I it contains, and
extremes (float32)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import pareto_vae_jax as pvj
from pareto_vae_jax.distributions.generalized_pareto import GeneralizedPareto
from reference import scipy_dist

KEY = jax.random.key(0)
# Jitted entry points: one compilation per shape instead of one per operation (eager dispatch).
rsample = jax.jit(pvj.rsample, static_argnums=2)
rsample_log = jax.jit(pvj.rsample_log, static_argnums=2)
log_prob = jax.jit(pvj.log_prob)
log_prob_log = jax.jit(pvj.log_prob_log)
QUANTILES = np.array([1e-4, 0.01, 0.2, 0.5, 0.8, 0.99, 0.9999])


def test_generalized_pareto_log_prob_is_minus_inf_exactly_where_scipy_is():
  dist = GeneralizedPareto(2.0, jnp.array([-0.5, 0.0, 0.5]), 1.0)  # xi < 0: support [1, 5)
  z = np.array([-3.0, 0.999, 1.0, 4.999, 5.0, 7.0], np.float32)[:, None]
  got = np.asarray(log_prob(dist, z))
  want = scipy_dist(dist).logpdf(z.astype(np.float64))
  np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
  assert np.isfinite(got[~np.isneginf(want)]).all()


# Taylor expansion of log f = -log sigma - (1/xi + 1) log1p(xi y) at xi = 0:
# -log sigma - y + xi (y^2 / 2 - y) + O(xi^2).
@pytest.mark.parametrize("xi", [-1e-6, 0.0, 1e-6])
def test_generalized_pareto_log_prob_and_its_xi_derivative_are_continuous_through_xi_0(xi):
  scale, loc = 1.5, -0.5
  y = np.array([0.0, 1e-3, 0.3, 1.0, 4.0, 12.0], np.float32)
  z = jnp.asarray(loc + scale * y)
  value = log_prob(GeneralizedPareto(scale, xi, loc), z)
  np.testing.assert_allclose(value, stats.expon(loc=loc, scale=scale).logpdf(np.asarray(z)),
                             rtol=2e-5, atol=2e-5)
  d_xi = jax.jit(jax.vmap(jax.grad(lambda s, zi: pvj.log_prob(GeneralizedPareto(scale, s, loc),
                                                              zi)), (None, 0)))(jnp.float32(xi), z)
  y64 = (np.asarray(z, np.float64) - loc) / scale
  np.testing.assert_allclose(d_xi, y64 ** 2 / 2 - y64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("xi", [-1e-6, 0.0, 1e-6])
def test_generalized_pareto_draws_and_their_xi_derivative_are_continuous_through_xi_0(xi):
  # z = mu + sigma expm1(xi E) / xi: at xi = 0, z = mu + sigma E and dz/dxi = sigma E^2 / 2.
  scale, loc = 1.5, -0.5
  sample = lambda s: pvj.rsample(KEY, GeneralizedPareto(scale, s, loc), (2000,))
  e = (np.asarray(rsample(KEY, GeneralizedPareto(scale, 0.0, loc), (2000,)), np.float64) - loc
       ) / scale
  z, dz = jax.jit(lambda s: jax.jvp(sample, (s,), (jnp.ones_like(s),)))(jnp.float32(xi))
  np.testing.assert_allclose(z, loc + scale * e, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dz, scale * e ** 2 / 2, rtol=1e-4, atol=1e-6)


def test_generalized_pareto_with_loc_sigma_over_xi_is_the_pareto_type_i():
  scale, xi = jnp.array([0.3, 2.0, 1.0]), jnp.array([0.25, 1.0, 5.0])
  gpd = GeneralizedPareto(scale, xi, scale / xi)
  pareto = pvj.Pareto(1 / xi, scale / xi)
  z = stats.pareto(b=1 / np.asarray(xi), scale=np.asarray(scale / xi)).ppf(
      QUANTILES[:, None]).astype(np.float32)
  np.testing.assert_allclose(log_prob(gpd, z), log_prob(pareto, z), rtol=2e-5, atol=2e-5)
  # In log space, also where z overflows float32 (log z = 300).
  log_z = jnp.array([0.5, 3.0, 40.0, 300.0])[:, None]
  np.testing.assert_allclose(log_prob_log(gpd, log_z), log_prob_log(pareto, log_z),
                             rtol=2e-5, atol=2e-5)
  # Both samplers invert the same Exp(1) draw: equal in law, and here draw by draw.
  np.testing.assert_allclose(rsample_log(KEY, gpd, (1000,)),
                             rsample_log(KEY, pareto, (1000,)), rtol=1e-5, atol=1e-5)


def test_generalized_pareto_mean_log_is_nan_away_from_loc_0_where_it_has_no_closed_form():
  assert np.isnan(float(pvj.mean_log(GeneralizedPareto(1.0, 0.5, 2.0))))


def test_generalized_pareto_standard_prior_has_tail_index_2():
  # Finite mean, infinite variance.
  info = pvj.family_info("generalized_pareto")
  p = info.standard_prior((5,), **info.latent_fixed)
  assert np.isfinite(pvj.mean(p)).all() and np.isinf(pvj.variance(p)).all()


@functools.partial(jax.jit, static_argnums=0)
def _generalized_pareto_extremes(in_log, scale, xi):
  """Draws, their log-densities, and the gradient of the trainer's MC KL (through the draws)."""
  sampler, score = ((pvj.rsample_log, pvj.log_prob_log) if in_log
                    else (pvj.rsample, pvj.log_prob))
  fn = lambda s, x: sampler(KEY, GeneralizedPareto(s, x), (2048,))
  mc_kl = lambda s, x: (score(GeneralizedPareto(s, x), fn(s, x))
                        - score(GeneralizedPareto(1.0, 0.5), fn(s, x))).mean()
  r = fn(scale, xi)
  return r, score(GeneralizedPareto(scale, xi), r), jax.grad(mc_kl, (0, 1))(scale, xi)


@pytest.mark.parametrize("in_log", [False, True])
def test_generalized_pareto_draws_log_probs_and_gradients_are_finite_over_the_range(in_log):
  scale = jnp.geomspace(1e-2, 1e2, 5)[None, :]
  xi = jnp.geomspace(1e-4, 2.0, 9)[:, None]
  for value in jax.tree.leaves(_generalized_pareto_extremes(in_log, scale, xi)):
    assert np.isfinite(value).all()


def test_generalized_pareto_log_space_stays_finite_where_draws_overflow():
  dist = GeneralizedPareto(1.0, jnp.array([10.0, 50.0]))  # draws up to e^(15.9 xi)
  log_z = rsample_log(KEY, dist, (4096,))
  assert np.isinf(rsample(KEY, dist, (4096,))).any()
  assert np.isfinite(log_z).all() and np.isfinite(log_prob_log(dist, log_z)).all()
  # log(1 + xi z / sigma) / xi is the Exp(1) draw: KS in log space.
  xi = np.asarray(dist.shape, np.float64)
  e = np.logaddexp(0.0, np.asarray(log_z, np.float64) + np.log(xi)) / xi
  for column in e.T:
    assert stats.kstest(column, stats.expon.cdf).pvalue > 1e-3
