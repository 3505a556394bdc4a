"""Float64 checks: tight agreement with scipy and quadrature, and the IG implicit gradient
against autodiff of its CDF. Run in their own file because they switch JAX to 64-bit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from pareto_vae_jax.distributions import inverse_gaussian
from reference import kl_quadrature, scipy_dist


@pytest.fixture(autouse=True)
def x64():
  with jax.enable_x64(True):
    yield


def _cases():
  return [
      pvj.Gaussian(jnp.array([-2.0, 3.0]), jnp.array([0.1, 5.0])),
      pvj.LogNormal(jnp.array([-2.0, 3.0]), jnp.array([0.1, 2.5])),
      pvj.Pareto(jnp.array([0.05, 2.5, 40.0]), jnp.array([1.0, 0.2, 10.0])),
      pvj.InverseGaussian(jnp.array([0.05, 1.0, 20.0]), jnp.array([0.2, 50.0, 3.0])),
  ]


def test_parameters_are_float64_when_enabled():
  assert pvj.Pareto(2.0).dtype == jnp.float64


@pytest.mark.parametrize("index", range(4))
def test_log_prob_matches_scipy_to_1e_12(index):
  dist = _cases()[index]
  ref = scipy_dist(dist)
  z = ref.ppf(np.array([1e-6, 0.3, 0.5, 0.97, 1 - 1e-9])[:, None])
  np.testing.assert_allclose(pvj.log_prob(dist, z), ref.logpdf(z), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("q_params,p_params", [((0.05, 3.0), (40.0, 1.0)), ((2.0, 1.0), (2.0, 1.0)),
                                               ((0.7, 1.0), (0.3, 1e-3))])
def test_pareto_kl_matches_quadrature_to_1e_9(q_params, p_params):
  q, p = pvj.Pareto(*q_params), pvj.Pareto(*p_params)
  np.testing.assert_allclose(float(pvj.kl(q, p)), kl_quadrature(q, p), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("q_params,p_params", [((0.05, 0.2), (20.0, 3.0)), ((3.0, 50.0), (1.0, 1.0))])
def test_inverse_gaussian_kl_matches_quadrature_to_1e_7(q_params, p_params):
  q, p = pvj.InverseGaussian(*q_params), pvj.InverseGaussian(*p_params)
  np.testing.assert_allclose(float(pvj.kl(q, p)), kl_quadrature(q, p), rtol=1e-7)


@pytest.mark.parametrize("mu,lam", [(1.0, 1.0), (2.0, 0.5), (0.1, 40.0), (5.0, 300.0)])
def test_inverse_gaussian_log_cdf_matches_scipy_where_exp_2lam_over_mu_overflows(mu, lam):
  dist = pvj.InverseGaussian(mu, lam)
  ref = scipy_dist(dist)
  z = ref.ppf(np.array([1e-6, 0.01, 0.5, 0.99]))
  np.testing.assert_allclose(np.exp(inverse_gaussian.log_cdf(dist, z)), ref.cdf(z), rtol=1e-9)
  # 2 lam / mu = 800 for (0.1, 40): exp overflows even in float64, the log form does not.


@pytest.mark.parametrize("mu,lam", [(1.0, 1.0), (2.0, 0.5), (0.1, 40.0), (30.0, 0.01)])
def test_implicit_gradient_equals_minus_cdf_derivative_over_density(mu, lam):
  dist = pvj.InverseGaussian(mu, lam)
  z = jnp.asarray(scipy_dist(dist).ppf(np.array([0.001, 0.2, 0.5, 0.8, 0.999])))
  cdf = lambda m, l: jnp.exp(inverse_gaussian.log_cdf(pvj.InverseGaussian(m, l), z))
  d_mu, d_lam = jax.jacfwd(cdf, argnums=(0, 1))(mu, lam)
  density = jnp.exp(pvj.log_prob(dist, z))
  g_mu, g_lam = inverse_gaussian._implicit_log_grads(jnp.float64(mu), jnp.float64(lam), jnp.log(z))
  np.testing.assert_allclose(g_mu * z, -d_mu / density, rtol=1e-7)
  np.testing.assert_allclose(g_lam * z, -d_lam / density, rtol=1e-6, atol=1e-12 * float(z.max()))
