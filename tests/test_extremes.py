"""Values and gradients stay finite over the documented parameter ranges (float32).

Every registered family over its range in tests/family_cases.py; then the Pareto's plain
draws, the rate at which they overflow below that range, and the closed-form KLs; last, the
two reported points where a gradient was nan (tests/test_fuzz.py fuzzes every family).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import special

import pareto_vae_jax as pvj
from family_cases import CASES
from pareto_vae_jax.distributions import weibull

SETTINGS = settings(max_examples=40, deadline=None)
log_uniform = lambda lo, hi: st.floats(np.log(lo), np.log(hi)).map(np.exp)
KEY = jax.random.key(5)
N = 4096


def _draws_and_grads(sample_fn, dist):
  """Draws and the gradient of their mean with respect to every parameter, in one pass."""
  def batch_mean(d):
    draws = sample_fn(KEY, d, (N,))
    return jnp.mean(draws), draws

  (_, draws), grads = jax.value_and_grad(batch_mean, has_aux=True)(dist)
  return draws, grads.params


def _strategy(low, high, log):
  return log_uniform(low, high) if log else st.floats(low, high)


@pytest.mark.parametrize("name", pvj.family_names())
def test_draws_densities_and_their_gradients_are_finite_over_the_documented_range(name):
  # Drawn and scored as the trainer does: in log space for positive families. A finite
  # density also puts every draw inside the support (a Pareto's log z >= log x_m).
  cases, info = CASES[name], pvj.family_info(name)
  sample, score = ((pvj.rsample_log, pvj.log_prob_log) if cases.positive
                   else (pvj.rsample, pvj.log_prob))

  @jax.jit  # compiled once per family; each example is then one call
  def values(dist):
    draws, grads = _draws_and_grads(sample, dist)
    density_grads = jax.grad(lambda d: jnp.mean(score(d, draws)))(dist)
    return draws, grads, score(dist, draws), density_grads.params

  @settings(max_examples=cases.range_examples, deadline=None)
  @given(st.tuples(*(_strategy(*cases.ranges[n]) for n in info.param_names)))
  def check(params):
    for value in jax.tree.leaves(values(info.cls(*params))):
      assert np.isfinite(value).all(), params

  check()


@SETTINGS
@given(alpha=log_uniform(0.18, 1e3))
def test_pareto_rsample_is_finite_when_alpha_is_at_least_0_18_with_unit_scale(alpha):
  # The largest float32 Exp(1) draw is 15.94, and 15.94 / 0.18 < log(float32 max) = 88.72.
  draws, grads = _draws_and_grads(pvj.rsample, pvj.Pareto(alpha, 1.0))
  assert np.isfinite(draws).all() and all(np.isfinite(g) for g in grads)


def test_pareto_rsample_overflows_to_inf_below_that_range_at_the_predicted_rate():
  z = pvj.rsample(KEY, pvj.Pareto(0.01), (200_000,))
  rate = float(jnp.mean(jnp.isinf(z)))
  predicted = np.exp(-0.01 * np.log(np.finfo(np.float32).max))  # P(E / alpha > 88.72)
  assert abs(rate - predicted) < 4 * np.sqrt(predicted * (1 - predicted) / z.size)
  assert not np.isnan(z).any()


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


def _bauckhage_kl64(k1, l1, k2, l2):
  # Bauckhage's closed form as published, in float64 (its terms reach 1e38 here, far below the
  # float64 range, so the direct evaluation is exact enough for central differences).
  return (np.log(k1 / l1**k1) - np.log(k2 / l2**k2) + (k1 - k2) *
          (np.log(l1) - np.euler_gamma / k1) + (l1 / l2)**k2 * special.gamma(k2 / k1 + 1) - 1)


def test_weibull_kl_gradient_is_never_nan_where_the_kl_nears_float32_overflow():
  # Reported: jax.grad(kl_weibull, (0, 1, 2, 3)) here was (nan, inf, nan, -inf) at a KL of
  # 1.7e38: the chain rule multiplied expm1(s) ~ 1.7e38 into each path of s, and two paths whose
  # products overflowed with opposite signs added to inf - inf.
  args = (57.14, 5.5414, 18.038, 0.041836)
  params64 = [np.float64(np.float32(a)) for a in args]
  value = float(pvj.kl_weibull(*args))
  np.testing.assert_allclose(value, _bauckhage_kl64(*params64), rtol=1e-4)  # 1.6975e38
  grads = np.array(jax.grad(pvj.kl_weibull, argnums=(0, 1, 2, 3))(*args))
  assert not np.isnan(grads).any(), grads
  expected = []
  for i, p in enumerate(params64):
    up, down = list(params64), list(params64)
    up[i], down[i] = p * (1 + 1e-7), p * (1 - 1e-7)
    expected.append((_bauckhage_kl64(*up) - _bauckhage_kl64(*down)) / (2e-7 * p))
  expected = np.array(expected)  # 1.42e35, then 5.5e38, 8.3e38 and -7.3e40: beyond float32
  fits = np.abs(expected) < np.finfo(np.float32).max
  np.testing.assert_allclose(grads[fits], expected[fits], rtol=1e-3)
  np.testing.assert_array_equal(grads[~fits], np.sign(expected[~fits]) * np.inf)


def test_lomax_rsample_gradient_is_inf_not_nan_where_the_draw_overflows_as_the_paretos_is():
  # Reported: at alpha = 0.0111, scale 0.4 the gradient in alpha of a draw that overflows to inf
  # was nan (the Pareto's is -inf): the derivative of log(-expm1(-x)), x = E / alpha, underflows
  # to 0 there and met the infinite cotangent of z.
  alpha, scale = 0.0111, 0.4
  keys = jax.random.split(KEY, N)
  draw = lambda a, s, key: pvj.rsample(key, pvj.Lomax(a, s))
  z = jax.vmap(draw, (None, None, 0))(alpha, scale, keys)
  d_alpha, d_scale = jax.vmap(jax.grad(draw, (0, 1)), (None, None, 0))(alpha, scale, keys)
  overflow = np.isinf(z)
  assert 0.3 < overflow.mean() < 0.45  # P(E / alpha > 88.72 - log 0.4) = 0.37
  assert not np.isnan(d_alpha).any() and not np.isnan(d_scale).any()
  assert np.isneginf(d_alpha[overflow]).all() and np.isposinf(d_scale[overflow]).all()
  # Elsewhere the derivatives of z = lam expm1(E / alpha) with the same E, in float64.
  log_e = jax.vmap(lambda key: weibull.log_standard_exponential(key, (), jnp.float32))(keys)
  x = np.exp(np.asarray(log_e, np.float64)) / np.float64(np.float32(alpha))
  with np.errstate(over="ignore"):
    expected_alpha = -np.float64(np.float32(scale)) * np.exp(x) * x / np.float32(alpha)
    expected_scale = np.expm1(x)
  moderate = np.abs(expected_alpha) < 1e30
  np.testing.assert_allclose(d_alpha[moderate], expected_alpha[moderate], rtol=1e-4)
  np.testing.assert_allclose(d_scale[moderate], expected_scale[moderate], rtol=1e-4)
  # The Pareto with the same tail index: its overflowed draws have the same gradient signs.
  pareto = lambda a, s, key: pvj.rsample(key, pvj.Pareto(a, s))
  p_alpha, p_scale = jax.vmap(jax.grad(pareto, (0, 1)), (None, None, 0))(alpha, scale, keys)
  p_overflow = np.isinf(jax.vmap(pareto, (None, None, 0))(alpha, scale, keys))
  assert np.isneginf(p_alpha[p_overflow]).all() and np.isposinf(p_scale[p_overflow]).all()
