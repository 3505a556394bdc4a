"""The scaled complementary error function against scipy, and the Inverse Gaussian implicit
gradient (which uses it) where jax.scipy.special.erfcx fails in float32."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats

from pareto_vae_jax.distributions import inverse_gaussian
from pareto_vae_jax.distributions.special import erfcx


def test_erfcx_float32_matches_scipy_on_the_whole_line():
  x = np.concatenate([np.linspace(0.0, 30.0, 300_001), np.geomspace(30.0, 1e30, 500)])
  x = x.astype(np.float32)
  value = np.asarray(erfcx(jnp.asarray(x)))
  ref = scipy.special.erfcx(x.astype(np.float64))
  assert np.isfinite(value).all()
  np.testing.assert_allclose(value, ref, rtol=2e-6)
  # x < 0: erfcx = 2 exp(x^2) - erfcx(-x); the rounding of x^2 alone costs ~x^2 * 6e-8.
  neg = np.linspace(-9.0, 0.0, 10_001).astype(np.float32)
  np.testing.assert_allclose(erfcx(jnp.asarray(neg)),
                             scipy.special.erfcx(neg.astype(np.float64)), rtol=1e-5)


def test_erfcx_is_right_where_exp_x2_times_erfc_breaks():
  # exp(x^2) * erfc(x) in float32: erfc underflows (flushed to 0) from x ~ 9.2, and exp(x^2)
  # overflows at 9.41928; the product is 0 or NaN there.
  x = np.linspace(9.0, 9.5, 50_001).astype(np.float32)
  np.testing.assert_allclose(erfcx(jnp.asarray(x)), scipy.special.erfcx(x.astype(np.float64)),
                             rtol=1e-6)


def test_erfcx_float64_and_its_gradient():
  with jax.enable_x64(True):
    x = np.linspace(-5.0, 60.0, 20_001)
    np.testing.assert_allclose(erfcx(jnp.asarray(x)), scipy.special.erfcx(x), rtol=5e-15)
    grad = jax.vmap(jax.grad(erfcx))(jnp.asarray(x))
    # d/dx erfcx(x) = 2 x erfcx(x) - 2 / sqrt(pi).
    ref = 2 * x * scipy.special.erfcx(x) - 2 / math.sqrt(math.pi)
    np.testing.assert_allclose(grad, ref, rtol=1e-9, atol=1e-13)


def _reference_log_grads(mu, lam, z, eps=1e-6):
  """d log z / d(mu, lam) = -(dF/dtheta) / (z f), by central differences of scipy's CDF."""
  cdf = lambda m, l: scipy.stats.invgauss.cdf(z, m / l, scale=l)
  f = scipy.stats.invgauss.pdf(z, mu / lam, scale=lam)
  d_mu = (cdf(mu * (1 + eps), lam) - cdf(mu * (1 - eps), lam)) / (2 * eps * mu)
  d_lam = (cdf(mu, lam * (1 + eps)) - cdf(mu, lam * (1 - eps))) / (2 * eps * lam)
  return -d_mu / (z * f), -d_lam / (z * f)


def test_inverse_gaussian_implicit_gradient_at_the_draw_that_stopped_training():
  # A float32 draw from the Inverse-Gaussian CVAE at step 1667 of the default config: here
  # b / sqrt(2) = 9.41928, where jax.scipy.special.erfcx returns NaN; the NaN ended training.
  mu, lam, log_z = np.float32(0.5186217), np.float32(22.758266), np.float32(-0.44795898)
  # A vector, as in training: XLA:CPU's vectorized exp rounds differently from its scalar one.
  full = lambda v: jnp.full((64,), v)
  g_mu, g_lam = inverse_gaussian._implicit_log_grads(full(mu), full(lam), full(log_z))
  ref_mu, ref_lam = _reference_log_grads(float(mu), float(lam), math.exp(float(log_z)))
  np.testing.assert_allclose(g_mu, ref_mu, rtol=1e-4)
  np.testing.assert_allclose(g_lam, ref_lam, rtol=1e-4)


@pytest.mark.parametrize("mu,lam", [(0.5, 20.0), (1.0, 36.0), (0.2, 7.0), (0.1, 40.0)])
def test_inverse_gaussian_implicit_gradient_is_finite_and_right_across_quantiles(mu, lam):
  # b = 2 sqrt(lam / mu) cosh(l / 2), l = log(z / mu), rises from 2 sqrt(lam / mu) (< 13 for
  # the first three) through the window b / sqrt(2) in [9.2, 9.42] where the naive erfcx fails.
  q = np.linspace(0.0005, 0.9995, 2001)
  z = scipy.stats.invgauss.ppf(q, mu / lam, scale=lam)
  g_mu, g_lam = inverse_gaussian._implicit_log_grads(
      jnp.float32(mu), jnp.float32(lam), jnp.asarray(np.log(z), jnp.float32))
  ref_mu, ref_lam = _reference_log_grads(mu, lam, z)
  assert np.isfinite(g_mu).all() and np.isfinite(g_lam).all()
  np.testing.assert_allclose(g_mu, ref_mu, rtol=2e-3, atol=1e-4 * np.abs(ref_mu).max())
  np.testing.assert_allclose(g_lam, ref_lam, rtol=2e-3, atol=1e-4 * np.abs(ref_lam).max())


def test_exp_exp1_matches_scipy_from_tiny_to_huge_arguments():
  from pareto_vae_jax.distributions.special import exp_exp1
  x = np.geomspace(1e-20, 600.0, 20_001)
  ref = np.exp(x) * scipy.special.exp1(x)
  np.testing.assert_allclose(exp_exp1(jnp.asarray(x, jnp.float32)), ref, rtol=1e-6)
  with jax.enable_x64(True):
    np.testing.assert_allclose(exp_exp1(jnp.asarray(x)), ref, rtol=1e-11)
  # Beyond exp's range: exp(x) E1(x) = (1/x)(1 - 1/x + 2/x^2 - ...), to O(6 / x^4).
  big = np.geomspace(1e3, 1e30, 50)
  np.testing.assert_allclose(exp_exp1(jnp.asarray(big, jnp.float32)),
                             (1 - 1 / big + 2 / big**2) / big, rtol=1e-6)
