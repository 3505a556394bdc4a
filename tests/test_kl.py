"""Closed-form KL divergences against quadrature of E_q[log q - log p] (scipy).

Parametrized over the registry (tests/family_cases.py, tests/reference.py); the Pareto's
general-scale closed form has its own cases below.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from family_cases import CASES, per_case
from reference import kl_quadrature, scipy_dist

KL_PAIRS = per_case("kl_pairs")


def _kl_id(case):
  name, index = case
  q_params, p_params = CASES[name].kl_pairs[index]
  return f"{name}{q_params}||{p_params}"


@pytest.mark.parametrize("case", KL_PAIRS, ids=[_kl_id(c) for c in KL_PAIRS])
def test_closed_form_kl_matches_quadrature(case):
  name, index = case
  cases, cls = CASES[name], pvj.family_info(name).cls
  q_params, p_params = cases.kl_pairs[index]
  q, p = cls(*q_params), cls(*p_params)
  expected = kl_quadrature(q, p)
  rtol, atol = cases.kl_tolerance
  np.testing.assert_allclose(float(pvj.kl(q, p)), expected, rtol=rtol, atol=atol)
  if cases.kl_function is not None:  # the same formula on plain arrays
    np.testing.assert_allclose(float(cases.kl_function(*q_params, *p_params)), expected,
                               rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", pvj.family_names())
def test_a_closed_form_kl_is_registered_exactly_where_one_is_tested(name):
  # Without one, kl() refuses and points to the Monte Carlo estimate the trainer uses.
  dist = CASES[name].grad_point
  assert pvj.has_closed_form_kl(type(dist), type(dist)) == bool(CASES[name].kl_pairs)
  if not CASES[name].kl_pairs:
    with pytest.raises(pvj.KLNotImplementedError, match="Monte Carlo"):
      pvj.kl(dist, dist)


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
  assert scipy_dist(q).cdf(scale_p) > 0 and scipy_dist(p).pdf(0.5 * (scale_q + scale_p)) == 0


def test_kl_pareto_broadcasts_elementwise():
  alpha_q = jnp.array([[0.5], [2.0]])
  out = pvj.kl_pareto(alpha_q, jnp.array([1.0, 3.0, 9.0]), 1.0, jnp.array([1.0, 2.0, 0.5]))
  assert out.shape == (2, 3)
  assert np.isinf(out[:, 1]).all() and np.isfinite(out[:, [0, 2]]).all()


def test_kl_of_a_pair_without_closed_form_names_both_types():
  with pytest.raises(pvj.KLNotImplementedError, match=r"KL\(Pareto \|\| Gaussian\)"):
    pvj.kl(pvj.Pareto(1.0), pvj.Gaussian(0.0, 1.0))
  with pytest.raises(NotImplementedError, match=r"LogNormal \|\| InverseGaussian"):
    pvj.kl(pvj.LogNormal(0.0, 1.0), pvj.InverseGaussian(1.0, 1.0))
