"""Values and gradients stay finite over the documented parameter ranges (float32).

Every registered family over its range in tests/family_cases.py; then the Pareto's plain
draws, the rate at which they overflow below that range, and the closed-form KLs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import pareto_vae_jax as pvj
from family_cases import CASES

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
