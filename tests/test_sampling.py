"""Samplers: distribution (Kolmogorov-Smirnov against scipy) and Monte Carlo KL."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import pareto_vae_jax as pvj
from reference import scipy_dist

SINGLE = [
    pvj.Gaussian(-1.0, 3.0),
    pvj.LogNormal(0.5, 0.4),
    pvj.LogNormal(-2.0, 2.0),
    pvj.Pareto(0.3, 1.0),
    pvj.Pareto(2.5, 0.01),
    pvj.Pareto(40.0, 5.0),
    pvj.InverseGaussian(1.0, 1.0),
    pvj.InverseGaussian(3.0, 0.2),   # mu/lam large: the large root dominates
    pvj.InverseGaussian(0.2, 30.0),  # nearly Gaussian
]
IDS = [repr(tuple(float(p) for p in d.params)).join((type(d).__name__, "")) for d in SINGLE]


@pytest.mark.parametrize("dist", SINGLE, ids=IDS)
def test_samples_pass_kolmogorov_smirnov_against_scipy_cdf(dist):
  z = np.asarray(pvj.rsample(jax.random.key(0), dist, (20_000,)), np.float64)
  assert np.isfinite(z).all()
  result = stats.kstest(z, scipy_dist(dist).cdf)
  assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("dist", SINGLE[1:], ids=IDS[1:])
def test_rsample_log_is_log_of_rsample_with_the_same_key(dist):
  key = jax.random.key(3)
  np.testing.assert_allclose(np.exp(pvj.rsample_log(key, dist, (1000,))),
                             pvj.rsample(key, dist, (1000,)), rtol=1e-5)


def test_rsample_log_of_pareto_is_shifted_exponential():
  dist = pvj.Pareto(0.01, 2.0)  # z itself would overflow float32 for ~41% of draws
  log_z = np.asarray(pvj.rsample_log(jax.random.key(1), dist, (20_000,)), np.float64)
  result = stats.kstest(log_z - np.log(2.0), stats.expon(scale=1 / 0.01).cdf)
  assert result.pvalue > 1e-3, result


PAIRS = [
    (pvj.Gaussian(0.5, 0.3), pvj.Gaussian(0.0, 1.0)),
    (pvj.LogNormal(1.0, 2.0), pvj.LogNormal(-1.0, 0.5)),
    (pvj.Pareto(0.5, 1.0), pvj.Pareto(2.0, 1.0)),
    (pvj.Pareto(3.0, 2.0), pvj.Pareto(0.7, 0.5)),  # different scales, x_q > x_p
    (pvj.InverseGaussian(2.0, 0.5), pvj.InverseGaussian(1.0, 1.0)),
    (pvj.InverseGaussian(0.3, 5.0), pvj.InverseGaussian(1.0, 2.0)),
]


@pytest.mark.parametrize("q,p", PAIRS, ids=[type(q).__name__ for q, _ in PAIRS])
def test_monte_carlo_kl_agrees_with_closed_form_within_standard_errors(q, p):
  z = pvj.rsample(jax.random.key(7), q, (200_000,))
  ratio = np.asarray(pvj.log_prob(q, z) - pvj.log_prob(p, z), np.float64)
  estimate, stderr = ratio.mean(), ratio.std() / np.sqrt(ratio.size)
  closed = float(pvj.kl(q, p))
  assert abs(estimate - closed) < 4 * stderr + 1e-4, (estimate, stderr, closed)


def test_sample_shape_prepends_to_batch_shape():
  dist = pvj.Pareto(jnp.ones((2, 3)))
  assert pvj.rsample(jax.random.key(0), dist, (5, 4)).shape == (5, 4, 2, 3)
  assert pvj.rsample(jax.random.key(0), dist, 5).shape == (5, 2, 3)
  assert pvj.rsample_log(jax.random.key(0), dist).shape == (2, 3)
