"""Lomax cases beyond the registry-parametrized tests: the density at the edge of the support,
the log-space sampler against a float64 inverse CDF, and the shared-scale KL."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

import pareto_vae_jax as pvj
from pareto_vae_jax.distributions import weibull
from reference import kl_quadrature

KEY = jax.random.key(13)


def test_lomax_log_prob_at_zero_is_the_density_alpha_over_lambda():
  # 0 is in the support (the points below it are in test_log_prob.py).
  np.testing.assert_allclose(float(pvj.log_prob(pvj.Lomax(2.5, 4.0), 0.0)),
                             stats.lomax(2.5, scale=4.0).logpdf(0), rtol=1e-6)


@pytest.mark.parametrize("alpha", [1e-2, 0.5, 1e2, 1e4, 1e7])
def test_lomax_rsample_log_is_the_float64_inverse_cdf_of_its_exponential_draw(alpha):
  # The same key gives the same E; float64 log(expm1(E / alpha)) checks both branches of the
  # float32 arithmetic, including E / alpha below the smallest normal float32 (alpha = 1e7).
  shape = (4096,)
  log_e = np.asarray(weibull.log_standard_exponential(KEY, shape, jnp.float32), np.float64)
  x = np.exp(log_e) / alpha
  expected = np.log(0.3) + np.where(x < 700, np.log(np.expm1(np.minimum(x, 700))), x)
  got = pvj.rsample_log(KEY, pvj.Lomax(jnp.full(shape, alpha), 0.3))
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=2e-6)


@pytest.mark.parametrize("alpha_q,alpha_p,scale", [(0.5, 2.0, 1.0), (3.0, 0.7, 0.1),
                                                   (40.0, 1.0, 7.0)])
def test_lomax_kl_with_a_shared_scale_is_the_pareto_kl(alpha_q, alpha_p, scale):
  # 1 + z / lam is Pareto(alpha, 1) and KL is invariant under that bijection (lomax.py).
  expected = kl_quadrature(pvj.Lomax(alpha_q, scale), pvj.Lomax(alpha_p, scale))
  np.testing.assert_allclose(float(pvj.kl_pareto(alpha_q, alpha_p)), expected, rtol=2e-5,
                             atol=1e-6)
