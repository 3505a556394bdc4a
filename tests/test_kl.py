"""Closed-form KL divergences against quadrature of E_q[log q - log p] (scipy)."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from reference import kl_quadrature

LOCS = (-3.0, 0.0, 5.0)
SCALES = (0.05, 1.0, 10.0)
NORMAL_PAIRS = [((m1, s1), (m2, s2))
                for (m1, s1, m2, s2) in itertools.product(LOCS[:2], SCALES, LOCS[1:], SCALES)]


@pytest.mark.parametrize("family", [pvj.Gaussian, pvj.LogNormal])
@pytest.mark.parametrize("q_params,p_params", NORMAL_PAIRS)
def test_normal_and_lognormal_kl_match_quadrature(family, q_params, p_params):
  q, p = family(*q_params), family(*p_params)
  np.testing.assert_allclose(float(pvj.kl(q, p)), kl_quadrature(q, p), rtol=2e-5, atol=1e-5)


ALPHAS = (0.05, 0.5, 1.0, 3.0, 50.0)
# (scale_q, scale_p) with scale_q >= scale_p: shared, close, far apart.
SUPPORTED_SCALES = ((1.0, 1.0), (2.0, 1.0), (1.5, 0.3), (100.0, 1.0))


@pytest.mark.parametrize("alpha_q,alpha_p", list(itertools.product(ALPHAS, ALPHAS)))
@pytest.mark.parametrize("scale_q,scale_p", SUPPORTED_SCALES)
def test_pareto_kl_matches_quadrature_when_scales_shared_or_differ(alpha_q, alpha_p, scale_q,
                                                                   scale_p):
  q, p = pvj.Pareto(alpha_q, scale_q), pvj.Pareto(alpha_p, scale_p)
  expected = kl_quadrature(q, p)
  np.testing.assert_allclose(float(pvj.kl(q, p)), expected, rtol=2e-5, atol=1e-5)
  np.testing.assert_allclose(float(pvj.kl_pareto(alpha_q, alpha_p, scale_q, scale_p)), expected,
                             rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("alpha_q,alpha_p", [(0.05, 50.0), (3.0, 3.0), (50.0, 0.5)])
def test_pareto_kl_with_shared_scale_is_the_guides_formula(alpha_q, alpha_p):
  guide = np.log(alpha_q) - np.log(alpha_p) + alpha_p / alpha_q - 1
  for scale in (0.1, 1.0, 7.0):
    np.testing.assert_allclose(float(pvj.kl_pareto(alpha_q, alpha_p, scale, scale)), guide,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("scale_q,scale_p", [(0.5, 1.0), (1.0, 1.0001), (1e-3, 1e3)])
def test_pareto_kl_is_inf_on_support_mismatch(scale_q, scale_p):
  q, p = pvj.Pareto(2.0, scale_q), pvj.Pareto(2.0, scale_p)
  assert float(pvj.kl(q, p)) == np.inf
  # The reason: q puts mass where p has none.
  from reference import scipy_dist
  assert scipy_dist(q).cdf(scale_p) > 0 and scipy_dist(p).pdf(0.5 * (scale_q + scale_p)) == 0


def test_kl_pareto_broadcasts_elementwise():
  alpha_q = jnp.array([[0.5], [2.0]])
  out = pvj.kl_pareto(alpha_q, jnp.array([1.0, 3.0, 9.0]), 1.0, jnp.array([1.0, 2.0, 0.5]))
  assert out.shape == (2, 3)
  assert np.isinf(out[:, 1]).all() and np.isfinite(out[:, [0, 2]]).all()


IG_MEANS = (0.05, 1.0, 20.0)
IG_SHAPES = (0.1, 1.0, 50.0)
IG_PAIRS = [((m1, l1), (m2, l2)) for m1, l1, m2, l2 in
            itertools.product(IG_MEANS, IG_SHAPES, IG_MEANS, IG_SHAPES) if (m1, l1) != (m2, l2)]


@pytest.mark.parametrize("q_params,p_params", IG_PAIRS[::3] + [((1.0, 1.0), (1.0, 1.0))])
def test_inverse_gaussian_kl_matches_quadrature(q_params, p_params):
  q, p = pvj.InverseGaussian(*q_params), pvj.InverseGaussian(*p_params)
  np.testing.assert_allclose(float(pvj.kl(q, p)), kl_quadrature(q, p), rtol=5e-5, atol=1e-5)


def test_kl_of_a_pair_without_closed_form_names_both_types():
  with pytest.raises(pvj.KLNotImplementedError, match=r"KL\(Pareto \|\| Gaussian\)"):
    pvj.kl(pvj.Pareto(1.0), pvj.Gaussian(0.0, 1.0))
  with pytest.raises(NotImplementedError, match=r"LogNormal \|\| InverseGaussian"):
    pvj.kl(pvj.LogNormal(0.0, 1.0), pvj.InverseGaussian(1.0, 1.0))
