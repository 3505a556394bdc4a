"""Weibull cases beyond the registry-parametrized tests: the standard prior, moments where
float32 loses them, the standard exponential draw behind the sampler, and Bauckhage's KL at
its special and extreme values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import special, stats

import pareto_vae_jax as pvj
from pareto_vae_jax.distributions import weibull
from pareto_vae_jax.distributions.weibull import kl_weibull

KEY = jax.random.key(13)
log_uniform = lambda lo, hi: st.floats(np.log(lo), np.log(hi)).map(np.exp)


def test_weibull_standard_prior_is_the_unit_exponential():
  z = np.array([0.01, 0.5, 2.0, 30.0], np.float32)
  np.testing.assert_allclose(pvj.log_prob(pvj.family_info("weibull").standard_prior((4,)), z),
                             stats.expon.logpdf(z), rtol=1e-6, atol=1e-6)


def test_weibull_variance_keeps_its_precision_where_the_two_gamma_values_nearly_cancel():
  # Var = lam^2 [Gamma(1 + 2/k) - Gamma(1 + 1/k)^2] ~ lam^2 zeta(2) / k^2: at k = 1e3 the
  # naive float32 difference keeps about one significant digit.
  k = np.array([30.0, 100.0, 1e3, 1e4], np.float32)
  np.testing.assert_allclose(pvj.variance(pvj.Weibull(k, 2.0)),
                             stats.weibull_min(k.astype(np.float64), scale=2.0).var(), rtol=2e-6)


def test_weibull_moments_overflow_to_inf_not_nan():
  dist = pvj.Weibull(jnp.array([0.01, 0.02]), 1.0)  # Gamma(101) = 9e157, Gamma(51) = 3e64
  assert np.isposinf(pvj.mean(dist)).all() and np.isposinf(pvj.variance(dist)).all()
  assert np.isfinite(pvj.mean_log(dist)).all()


def test_log_standard_exponential_is_finite_and_distributed_as_log_of_exp_one():
  log_e = np.asarray(weibull.log_standard_exponential(KEY, (20_000,), jnp.float32), np.float64)
  assert np.isfinite(log_e).all()
  # log E for E ~ Exp(1) is Gumbel (minimum) with location 0 and scale 1.
  assert stats.kstest(log_e, stats.gumbel_l.cdf).pvalue > 1e-3


@pytest.mark.parametrize("scale_q,scale_p", [(1.0, 1.0), (0.2, 3.0), (50.0, 0.5)])
def test_weibull_kl_with_unit_concentrations_is_the_exponential_kl(scale_q, scale_p):
  # KL(Exp(rate 1/lam_q) || Exp(rate 1/lam_p)) = log(lam_p / lam_q) + lam_q / lam_p - 1.
  expected = np.log(scale_p / scale_q) + scale_q / scale_p - 1
  np.testing.assert_allclose(float(kl_weibull(1.0, scale_q, 1.0, scale_p)), expected, rtol=1e-5,
                             atol=1e-7)


def test_weibull_kl_of_identical_distributions_is_exactly_zero_at_extremes():
  for q in (pvj.Weibull(1e-2, 1e2), pvj.Weibull(1e2, 1e-2), pvj.Weibull(1e-3, 1e-3),
            pvj.Weibull(1e3, 1e3), pvj.Weibull(0.7, 2.0)):
    assert float(pvj.kl(q, q)) == 0.0


@pytest.mark.parametrize("q_params,p_params", [((2.0002, 1.0), (2.0, 1.0)),
                                               ((0.5, 3.0003), (0.5, 3.0)),
                                               ((7.0, 1.0), (7.0007, 1.0001))])
def test_weibull_kl_of_nearly_equal_parameters_keeps_its_small_value_in_float32(q_params,
                                                                                 p_params):
  # Bauckhage's formula in float64 at the float32-rounded parameters: its O(1) terms cancel to
  # ~1e-8, which float64 keeps to ~1e-8 relative and a naive float32 evaluation loses entirely.
  k1, l1, k2, l2 = (np.float64(np.float32(v)) for v in q_params + p_params)
  expected = (np.log(k1 / l1 ** k1) - np.log(k2 / l2 ** k2)
              + (k1 - k2) * (np.log(l1) - np.euler_gamma / k1)
              + (l1 / l2) ** k2 * special.gamma(k2 / k1 + 1) - 1)
  np.testing.assert_allclose(float(kl_weibull(*q_params, *p_params)), expected, rtol=1e-3)


@settings(max_examples=20, deadline=None)
@given(k1=log_uniform(1e-2, 1e2), l1=log_uniform(1e-2, 1e2), k2=log_uniform(1e-2, 1e2),
       l2=log_uniform(1e-2, 1e2))
def test_weibull_kl_is_non_negative_with_finite_gradients_below_1e30_and_zero_ones_at_inf(
    k1, l1, k2, l2):
  value = float(kl_weibull(k1, l1, k2, l2))
  assert value >= 0  # +inf where exp(k2 log(l1/l2) + lgamma(1 + k2/k1)) leaves float32
  grads = np.array(jax.grad(kl_weibull, argnums=(0, 1, 2, 3))(k1, l1, k2, l2))
  if value == np.inf:
    np.testing.assert_array_equal(grads, 0.0)
  elif value < 1e30:  # the gradient is ~KL times k2 / lam2 or k2 / k1 (<= 1e4 here)
    assert np.isfinite(grads).all(), (value, grads)
