"""Student-t cases beyond the registry-parametrized tests: the normalizer on both sides of its
series switch, densities where u^2 overflows float32, moments where they diverge, and the rate
at which draws overflow below the documented range of df."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import pareto_vae_jax as pvj
from reference import scipy_dist

KEY = jax.random.key(13)


def test_student_t_log_prob_is_exact_where_u_squared_overflows_float32():
  dist = pvj.StudentT(0.5, 1.0, 1e-3)
  z = np.array([-3e36, 1e20, 2e38], np.float32)  # ((z - loc) / scale)^2 > 3.4e38
  np.testing.assert_allclose(pvj.log_prob(dist, z), scipy_dist(dist).logpdf(z.astype(np.float64)),
                             rtol=1e-6)


@pytest.mark.parametrize("df", [0.01, 3.0, 9.99, 10.0, 10.01, 300.0, 1e6])
def test_student_t_normalizer_is_exact_on_both_sides_of_its_series_switch(df):
  # The density at the median is the normalizer alone; from df = 10 on it is a series.
  np.testing.assert_allclose(float(pvj.log_prob(pvj.StudentT(df, 0.0, 1.0), 0.0)),
                             stats.t(df).logpdf(0.0), rtol=2e-6)


def test_student_t_moments_follow_scipys_convention_where_they_diverge():
  dist = pvj.StudentT(jnp.array([0.5, 1.0, 1.5, 2.0, 2.5]), 3.0, 1.0)
  np.testing.assert_array_equal(pvj.mean(dist), [np.inf, np.inf, 3.0, 3.0, 3.0])
  np.testing.assert_array_equal(pvj.variance(dist), [np.nan, np.nan, np.inf, np.inf, 5.0])


def test_student_t_draws_overflow_below_the_documented_range_at_the_predicted_rate_never_nan():
  # The documented range (df >= 0.3) is tested in test_extremes.py.
  dist = pvj.StudentT(0.02, 0.0, 1.0)
  z = pvj.rsample(KEY, dist, (20_000,))
  rate = float(jnp.mean(jnp.isinf(z)))
  predicted = 2 * stats.t(0.02).sf(np.finfo(np.float32).max)
  stderr = np.sqrt(predicted * (1 - predicted) / z.size)
  assert abs(rate - predicted) < 4 * stderr, (rate, predicted)
  assert not np.isnan(z).any()
  log_q = np.asarray(pvj.log_prob(dist, z))
  assert not np.isnan(log_q).any() and (log_q[np.isinf(z)] == -np.inf).all()
