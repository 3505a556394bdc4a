"""log_prob, mean and variance of every family against scipy.stats."""

import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from reference import scipy_dist

CASES = [
    pvj.Gaussian(jnp.array([-2.0, 0.0, 3.0]), jnp.array([0.1, 1.0, 5.0])),
    pvj.LogNormal(jnp.array([-2.0, 0.0, 3.0]), jnp.array([0.1, 1.0, 2.5])),
    pvj.Pareto(jnp.array([0.05, 0.8, 1.5, 2.5, 40.0]), jnp.array([1.0, 0.2, 3.0, 1.0, 10.0])),
    pvj.InverseGaussian(jnp.array([0.05, 1.0, 3.0, 20.0]), jnp.array([0.2, 1.0, 50.0, 3.0])),
]
IDS = [type(d).__name__ for d in CASES]


@pytest.mark.parametrize("dist", CASES, ids=IDS)
def test_log_prob_matches_scipy_on_quantile_grid(dist):
  ref = scipy_dist(dist)
  u = np.array([1e-4, 0.01, 0.2, 0.5, 0.8, 0.99, 0.9999])[:, None]
  z = ref.ppf(u)  # shape (7, batch): points across the bulk and both tails
  z = np.where(np.isfinite(z) & (z < 1e30), z, 1e30).astype(np.float32)
  got = np.asarray(pvj.log_prob(dist, z))
  np.testing.assert_allclose(got, ref.logpdf(z.astype(np.float64)), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dist", CASES[1:], ids=IDS[1:])
def test_log_prob_is_minus_inf_outside_positive_support(dist):
  z = np.array([-1.0, 0.0])[:, None] * np.ones(dist.batch_shape)
  assert np.all(np.asarray(pvj.log_prob(dist, z)) == -np.inf)


def test_pareto_log_prob_is_minus_inf_below_scale():
  dist = pvj.Pareto(2.0, 3.0)
  assert float(pvj.log_prob(dist, 2.999)) == -np.inf
  np.testing.assert_allclose(float(pvj.log_prob(dist, 3.0)), np.log(2 / 3), rtol=1e-6)


@pytest.mark.parametrize("dist", CASES[1:], ids=IDS[1:])
def test_log_prob_log_equals_log_prob_at_exp(dist):
  ref = scipy_dist(dist)
  log_z = np.log(ref.ppf(np.array([0.01, 0.5, 0.99])[:, None])).astype(np.float32)
  np.testing.assert_allclose(pvj.log_prob_log(dist, log_z), ref.logpdf(np.exp(log_z.astype(np.float64))),
                             rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dist", CASES, ids=IDS)
def test_mean_and_variance_match_scipy_including_infinite(dist):
  ref = scipy_dist(dist)
  np.testing.assert_allclose(pvj.mean(dist), ref.mean(), rtol=1e-5)
  np.testing.assert_allclose(pvj.variance(dist), ref.var(), rtol=1e-4)


def test_pareto_moments_are_inf_exactly_where_they_diverge():
  dist = pvj.Pareto(jnp.array([0.5, 1.0, 1.5, 2.0, 2.5]))
  np.testing.assert_array_equal(np.isinf(pvj.mean(dist)), [True, True, False, False, False])
  np.testing.assert_array_equal(np.isinf(pvj.variance(dist)), [True, True, True, True, False])


@pytest.mark.parametrize("dist", CASES[1:], ids=IDS[1:])
def test_mean_log_matches_quadrature_of_log_z(dist):
  # E[log z] by scipy quadrature over the quantile function (u in (0, 1)), an independent path.
  import scipy.integrate
  ref = scipy_dist(dist)
  expected = [scipy.integrate.quad(lambda u: np.log(ref.ppf(u)[i]), 0, 1, limit=200)[0]
              for i in range(dist.batch_shape[0])]
  np.testing.assert_allclose(pvj.mean_log(dist), expected, rtol=1e-5, atol=1e-5)


def test_mean_log_of_a_real_family_is_refused():
  with pytest.raises(ValueError, match="positive family"):
    pvj.mean_log(pvj.Gaussian(0.0, 1.0))
