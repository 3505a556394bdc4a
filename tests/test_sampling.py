"""Samplers of every family: Kolmogorov-Smirnov against the reference CDF, the log-space sampler
against the plain one, and sample shapes.

Parametrized over the registry (tests/family_cases.py, tests/reference.py). The Monte Carlo KL
of the draws is in test_mc_kl.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import pareto_vae_jax as pvj
from family_cases import CASES, per_case, scalar_id
from reference import scipy_dist, scipy_log_dist

SINGLES = per_case("singles")
# Positive families, at parameters whose support is positive (a Generalized Pareto's loc >= 0).
POSITIVE_SINGLES = [(n, i) for n, i in per_case("singles", lambda c: c.positive)
                    if scipy_dist(CASES[n].singles[i]).ppf(0.0) >= 0]


def _id(case):
  name, index = case
  return scalar_id(CASES[name].singles[index])


@pytest.mark.parametrize("case", SINGLES, ids=[_id(c) for c in SINGLES])
def test_samples_pass_kolmogorov_smirnov_against_the_reference_cdf(case):
  name, index = case
  dist = CASES[name].singles[index]
  z = np.asarray(pvj.rsample(jax.random.key(0), dist, (20_000,)), np.float64)
  assert np.isfinite(z).all()
  result = stats.kstest(z, scipy_dist(dist).cdf)
  assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("case", POSITIVE_SINGLES, ids=[_id(c) for c in POSITIVE_SINGLES])
def test_rsample_log_is_log_of_rsample_with_the_same_key(case):
  name, index = case
  dist = CASES[name].singles[index]
  key = jax.random.key(3)
  np.testing.assert_allclose(np.exp(pvj.rsample_log(key, dist, (1000,))),
                             pvj.rsample(key, dist, (1000,)), rtol=1e-5)


def _lomax_log_cdf_of_log_z(alpha, scale):
  # P(log Z <= s) = 1 - (1 + e^s / lam)^-alpha, with log(1 + e^s / lam) = logaddexp(0, s - log lam).
  return lambda s: -np.expm1(-alpha * np.logaddexp(0.0, s - np.log(scale)))


@pytest.mark.parametrize("dist,cdf", [
    (pvj.Pareto(0.01, 2.0), scipy_log_dist(pvj.Pareto(0.01, 2.0)).cdf),  # z overflows: ~41%
    (pvj.Lomax(0.01, 2.0), _lomax_log_cdf_of_log_z(0.01, 2.0)),  # z overflows for ~40% of draws
    (pvj.Weibull(0.01, 3.0), scipy_log_dist(pvj.Weibull(0.01, 3.0)).cdf),  # z under/overflows
], ids=["Pareto", "Lomax", "Weibull"])
def test_rsample_log_passes_kolmogorov_smirnov_where_z_leaves_float32(dist, cdf):
  log_z = np.asarray(pvj.rsample_log(jax.random.key(1), dist, (20_000,)), np.float64)
  assert np.isfinite(log_z).all() and np.abs(log_z).max() > 89  # exp(log_z) is out of range
  result = stats.kstest(log_z, cdf)
  assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("name", pvj.family_names())
def test_sample_shape_prepends_to_batch_shape(name):
  dist = jax.tree.map(lambda v: jnp.broadcast_to(v, (2, 3)), CASES[name].batch)
  key = jax.random.key(0)
  # Shapes only: eval_shape traces without compiling (the gamma sampler compiles slowly).
  assert jax.eval_shape(lambda: pvj.rsample(key, dist, (5, 4))).shape == (5, 4, 2, 3)
  assert jax.eval_shape(lambda: pvj.rsample(key, dist, 5)).shape == (5, 2, 3)
  if CASES[name].positive:
    assert jax.eval_shape(lambda: pvj.rsample_log(key, dist)).shape == (2, 3)
