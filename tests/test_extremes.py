"""Values and gradients stay finite over the documented parameter ranges (float32)."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings, strategies as st

import pareto_vae_jax as pvj

SETTINGS = settings(max_examples=40, deadline=None)
log_uniform = lambda lo, hi: st.floats(np.log(lo), np.log(hi)).map(np.exp)
KEY = jax.random.key(5)
N = 4096


def _value_and_grad(sample_fn, dist):
  """Draws and the gradient of their mean with respect to every parameter."""
  draws = sample_fn(KEY, dist, (N,))
  grads = jax.grad(lambda d: jnp.mean(sample_fn(KEY, d, (N,))))(dist)
  return np.asarray(draws), [np.asarray(g) for g in grads.params]


@SETTINGS
@given(alpha=log_uniform(1e-3, 1e3), scale=log_uniform(1e-3, 1e3))
def test_pareto_rsample_log_is_finite_with_finite_gradients_for_alpha_in_1e_3_to_1e3(alpha,
                                                                                       scale):
  draws, grads = _value_and_grad(pvj.rsample_log, pvj.Pareto(alpha, scale))
  assert np.isfinite(draws).all() and all(np.isfinite(g) for g in grads)
  assert (draws >= np.log(np.float32(scale)) - 1e-5).all()


@SETTINGS
@given(alpha=log_uniform(0.18, 1e3))
def test_pareto_rsample_is_finite_when_alpha_is_at_least_0_18_with_unit_scale(alpha):
  # The largest float32 Exp(1) draw is 15.94, and 15.94 / 0.18 < log(float32 max) = 88.72.
  draws, grads = _value_and_grad(pvj.rsample, pvj.Pareto(alpha, 1.0))
  assert np.isfinite(draws).all() and all(np.isfinite(g) for g in grads)


def test_pareto_rsample_overflows_to_inf_below_that_range_at_the_predicted_rate():
  z = pvj.rsample(KEY, pvj.Pareto(0.01), (200_000,))
  rate = float(jnp.mean(jnp.isinf(z)))
  predicted = np.exp(-0.01 * np.log(np.finfo(np.float32).max))  # P(E / alpha > 88.72)
  assert abs(rate - predicted) < 4 * np.sqrt(predicted * (1 - predicted) / z.size)
  assert not np.isnan(z).any()


@SETTINGS
@given(mean=log_uniform(1e-3, 1e3), shape=log_uniform(1e-3, 1e3))
def test_inverse_gaussian_rsample_log_and_gradients_are_finite(mean, shape):
  draws, grads = _value_and_grad(pvj.rsample_log, pvj.InverseGaussian(mean, shape))
  assert np.isfinite(draws).all() and all(np.isfinite(g) for g in grads)
  log_q = pvj.log_prob_log(pvj.InverseGaussian(mean, shape), draws)
  assert np.isfinite(log_q).all()


@SETTINGS
@given(loc=st.floats(-30, 30), scale=log_uniform(1e-4, 30))
def test_lognormal_and_gaussian_rsample_log_are_finite(loc, scale):
  for family, sampler in ((pvj.LogNormal, pvj.rsample_log), (pvj.Gaussian, pvj.rsample)):
    draws, grads = _value_and_grad(sampler, family(loc, scale))
    assert np.isfinite(draws).all() and all(np.isfinite(g) for g in grads)


@SETTINGS
@given(a_q=log_uniform(1e-3, 1e3), a_p=log_uniform(1e-3, 1e3), x_q=log_uniform(1e-3, 1e3),
       x_p=log_uniform(1e-3, 1e3))
def test_pareto_kl_is_non_negative_finite_iff_supports_nest_with_finite_gradients(a_q, a_p, x_q,
                                                                                   x_p):
  value = float(pvj.kl_pareto(a_q, a_p, x_q, x_p))
  if np.float32(x_q) >= np.float32(x_p):
    assert np.isfinite(value) and value >= 0
  else:
    assert value == np.inf
  grads = jax.grad(pvj.kl_pareto, argnums=(0, 1, 2, 3))(a_q, a_p, x_q, x_p)
  assert all(np.isfinite(g) for g in grads)


@SETTINGS
@given(m1=log_uniform(1e-3, 1e3), l1=log_uniform(1e-3, 1e3), m2=log_uniform(1e-3, 1e3),
       l2=log_uniform(1e-3, 1e3))
def test_inverse_gaussian_kl_is_non_negative_and_finite_with_finite_gradients(m1, l1, m2, l2):
  fn = lambda *a: pvj.kl(pvj.InverseGaussian(a[0], a[1]), pvj.InverseGaussian(a[2], a[3]))
  value = float(fn(m1, l1, m2, l2))
  assert np.isfinite(value) and value >= -1e-6
  assert all(np.isfinite(g) for g in jax.grad(fn, argnums=(0, 1, 2, 3))(m1, l1, m2, l2))


def test_kl_of_identical_distributions_is_exactly_zero_at_extremes():
  for q in (pvj.Pareto(1e-3, 1e3), pvj.Pareto(1e3, 1e-3), pvj.InverseGaussian(1e-3, 1e3),
            pvj.Gaussian(1e3, 1e-4), pvj.LogNormal(-30.0, 30.0)):
    assert float(pvj.kl(q, q)) == 0.0


def test_kl_of_nearly_equal_shapes_keeps_its_small_value_in_float32():
  # log(a_q/a_p) + a_p/a_q - 1 ~ t^2/2 for t = log(a_p/a_q): a naive float32 evaluation
  # returns rounding noise of order 1e-7 here, the expm1 form the true 5e-9.
  t = np.log(np.float64(np.float32(1.0001)))
  expected = np.expm1(t) - t
  np.testing.assert_allclose(float(pvj.kl_pareto(1.0, 1.0001)), expected, rtol=1e-3)
  np.testing.assert_allclose(float(pvj.kl(pvj.Gaussian(0.0, 1.0001), pvj.Gaussian(0.0, 1.0))),
                             0.5 * (np.expm1(2 * t) - 2 * t), rtol=1e-3)
