"""log_prob, log_prob_log, mean, variance and mean_log of every family against its reference.

Parametrized over the registry: the values come from tests/family_cases.py, the references
(scipy.stats and quadrature) from tests/reference.py.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from family_cases import CASES, names_where
from reference import elements, expectation_quadrature, scipy_dist

# Points across the bulk and both tails.
QUANTILES = np.array([1e-4, 0.01, 0.2, 0.5, 0.8, 0.99, 0.9999])[:, None]
POSITIVE = names_where(lambda c: c.positive)
REAL = names_where(lambda c: not c.positive)


@pytest.mark.parametrize("name", pvj.family_names())
def test_log_prob_matches_the_reference_on_a_quantile_grid(name):
  dist = CASES[name].grid
  ref = scipy_dist(dist)
  z = ref.ppf(QUANTILES)  # shape (7, batch)
  z = np.clip(np.nan_to_num(z, posinf=1e30, neginf=-1e30), -1e30, 1e30).astype(np.float32)
  np.testing.assert_allclose(pvj.log_prob(dist, z), ref.logpdf(z.astype(np.float64)), rtol=2e-5,
                             atol=2e-5)


@pytest.mark.parametrize("name", pvj.family_names())
def test_log_prob_is_minus_inf_outside_the_support(name):
  dist, points = CASES[name].outside
  z = np.asarray(points, np.float32).reshape((-1,) + (1,) * len(dist.batch_shape))
  np.testing.assert_array_equal(pvj.log_prob(dist, z),
                                np.full((len(points),) + dist.batch_shape, -np.inf))


def test_pareto_log_prob_is_minus_inf_below_scale():
  dist = pvj.Pareto(2.0, 3.0)
  assert float(pvj.log_prob(dist, 2.999)) == -np.inf
  np.testing.assert_allclose(float(pvj.log_prob(dist, 3.0)), np.log(2 / 3), rtol=1e-6)


@pytest.mark.parametrize("name", POSITIVE)
def test_log_prob_log_equals_the_reference_density_at_exp(name):
  cases = CASES[name]
  dist = cases.grid if cases.log_grid is None else cases.log_grid
  ref = scipy_dist(dist)
  log_z = np.log(ref.ppf(QUANTILES)).astype(np.float32)
  np.testing.assert_allclose(pvj.log_prob_log(dist, log_z),
                             ref.logpdf(np.exp(log_z.astype(np.float64))), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("name", pvj.family_names())
def test_mean_and_variance_match_the_reference_including_infinite_and_undefined(name):
  # assert_allclose requires inf and nan at the same positions as the reference's.
  dist = CASES[name].moments
  ref = scipy_dist(dist)
  np.testing.assert_allclose(pvj.mean(dist), ref.mean(), rtol=1e-5)
  np.testing.assert_allclose(pvj.variance(dist), ref.var(), rtol=1e-4)


def test_pareto_moments_are_inf_exactly_where_they_diverge():
  dist = pvj.Pareto(jnp.array([0.5, 1.0, 1.5, 2.0, 2.5]))
  np.testing.assert_array_equal(np.isinf(pvj.mean(dist)), [True, True, False, False, False])
  np.testing.assert_array_equal(np.isinf(pvj.variance(dist)), [True, True, True, True, False])


@pytest.mark.parametrize("name", POSITIVE)
def test_mean_log_matches_quadrature_of_log_z(name):
  # E[log z] by quadrature over the reference's quantile function, an independent path.
  dist, rtol, atol = CASES[name].mean_log
  expected = [expectation_quadrature(scipy_dist(d), np.log) for d in elements(dist)]
  np.testing.assert_allclose(pvj.mean_log(dist), expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", REAL)
def test_mean_log_of_a_real_family_is_refused(name):
  with pytest.raises(ValueError, match="positive family"):
    pvj.mean_log(CASES[name].grad_point)
