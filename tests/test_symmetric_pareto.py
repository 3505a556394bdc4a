"""Symmetric Pareto cases beyond the registry-parametrized tests: the density on both sides of
and at its centre, moments by quadrature and where they diverge, the closed-form KL for equal
locations and scales, and extremes (float32)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import pareto_vae_jax as pvj
from family_cases import CASES
from pareto_vae_jax.distributions import heads
from pareto_vae_jax.distributions.symmetric_pareto import SymmetricPareto, kl_symmetric_pareto
from reference import elements, expectation_quadrature, kl_quadrature, scipy_dist

KEY = jax.random.key(0)
QUANTILES = np.array([1e-4, 0.01, 0.2, 0.5, 0.8, 0.99, 0.9999])
SYM_LOCS = np.array([-3.0, 0.0, 40.0], np.float32)
SYM_ALPHAS = np.array([0.2, 0.5, 1.0, 2.5, 50.0], np.float32)
SYM_SCALES = np.array([0.01, 1.0, 100.0], np.float32)


def test_symmetric_pareto_log_prob_matches_half_the_lomax_density_on_both_sides_of_loc():
  loc, alpha, scale = np.meshgrid(SYM_LOCS, SYM_ALPHAS, SYM_SCALES, indexing="ij")
  dist = SymmetricPareto(loc, alpha, scale)
  # |z - loc| at the Lomax's quantiles on either side, and z = loc itself.
  t = np.minimum(stats.lomax.ppf(QUANTILES[:, None, None, None], alpha, scale=scale), 1e30)
  z = (loc + np.concatenate([-t[::-1], np.zeros((1,) + alpha.shape), t])).astype(np.float32)
  np.testing.assert_allclose(jax.jit(pvj.log_prob)(dist, z),
                             scipy_dist(dist).logpdf(z.astype(np.float64)), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("loc,alpha,scale", [(-2.0, 1.5, 2.0), (0.0, 2.5, 0.3), (30.0, 7.0, 10.0)])
def test_symmetric_pareto_moments_match_quadrature_where_finite(loc, alpha, scale):
  dist = SymmetricPareto(loc, alpha, scale)
  ref = scipy_dist(dist)
  mean = expectation_quadrature(ref, lambda z: z)
  np.testing.assert_allclose(float(pvj.mean(dist)), mean, rtol=1e-6, atol=1e-7 * scale)
  if alpha > 2:
    variance = expectation_quadrature(ref, lambda z: np.square(z - mean))
    np.testing.assert_allclose(float(pvj.variance(dist)), variance, rtol=1e-5)


def test_symmetric_pareto_moments_are_undefined_or_infinite_where_the_integrals_diverge():
  dist = SymmetricPareto(3.0, jnp.array([0.5, 1.0, 1.5, 2.0, 2.5]), 1.0)
  np.testing.assert_array_equal(np.isnan(pvj.mean(dist)), [True, True, False, False, False])
  np.testing.assert_array_equal(np.isinf(pvj.variance(dist)), [True, True, True, True, False])
  # The truncated integrals behind them keep growing: E|Z| at alpha = 1, E Z^2 at alpha = 2.
  for alpha, power in ((1.0, 1), (2.0, 2)):
    ref = scipy_dist(SymmetricPareto(0.0, alpha, 1.0))
    density = lambda t: np.exp(ref.logpdf(t))
    truncated = [2 * integrate.quad(lambda t: t ** power * density(t), 0, top, limit=400)[0]
                 for top in (1e3, 1e6)]
    assert truncated[1] > 1.8 * truncated[0], truncated


def test_symmetric_pareto_standard_prior_has_tail_index_2():
  # Finite mean, infinite variance.
  info = pvj.family_info("symmetric_pareto")
  p = info.standard_prior((5,), **info.latent_fixed)
  assert np.isfinite(pvj.mean(p)).all() and np.isinf(pvj.variance(p)).all()


# ------------------------------------------------------------------------------------------------
# KL: closed form for equal locations and scales only, so none is registered for the pair (the
# trainer's estimate is tested in test_mc_kl.py).

KL_ALPHAS = (0.2, 1.5, 50.0)


@pytest.mark.parametrize("loc,scale", [(0.0, 0.01), (-3.0, 1.0), (50.0, 100.0)])
def test_symmetric_pareto_kl_with_a_shared_loc_and_scale_matches_quadrature(loc, scale):
  pairs = list(itertools.product(KL_ALPHAS, KL_ALPHAS))
  a_q, a_p = (jnp.array(v) for v in zip(*pairs))
  expected = [kl_quadrature(SymmetricPareto(loc, alpha_q, scale),
                            SymmetricPareto(loc, alpha_p, scale)) for alpha_q, alpha_p in pairs]
  np.testing.assert_allclose(kl_symmetric_pareto(a_q, a_p), expected, rtol=2e-5, atol=1e-5)


def test_symmetric_pareto_kl_of_a_tail_index_with_itself_is_exactly_zero():
  alpha = jnp.array([1e-3, 0.2, 1.0, 100.0, 1e3])
  np.testing.assert_array_equal(kl_symmetric_pareto(alpha, alpha), 0.0)


def test_symmetric_pareto_closed_form_is_the_kl_the_trainer_estimates_where_locations_agree():
  q, p, _ = CASES["symmetric_pareto"].trainer_kl
  p = jax.tree.map(lambda v: jnp.broadcast_to(v, q.batch_shape), p)
  same = np.asarray(q.loc) == np.asarray(p.loc)
  assert same.any()
  exact = [kl_quadrature(qi, pi) for qi, pi, s in zip(elements(q), elements(p), same) if s]
  np.testing.assert_allclose(kl_symmetric_pareto(np.asarray(q.alpha)[same],
                                                 np.asarray(p.alpha)[same]), exact, rtol=2e-5,
                             atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Extremes.


@jax.jit
def _symmetric_pareto_extremes(loc, alpha, scale):
  """Draws, log-densities, gradients of the draws' mean and of the MC KL, and the closed form.

  The MC KL is the trainer's estimate against the standard prior; the closed-form KL (and its
  gradient) is taken between every pair of the tail indices.
  """
  fn = lambda *ps: pvj.rsample(KEY, SymmetricPareto(*ps), (2048,))
  prior = pvj.family_info("symmetric_pareto").standard_prior(())
  mc_kl = lambda *ps: (pvj.log_prob(SymmetricPareto(*ps), fn(*ps))
                       - pvj.log_prob(prior, fn(*ps))).mean()
  z = fn(loc, alpha, scale)
  kl = lambda a, b: kl_symmetric_pareto(a, b).sum()
  a = alpha.ravel()
  return (z, pvj.log_prob(SymmetricPareto(loc, alpha, scale), z),
          jax.grad(lambda *ps: fn(*ps).mean(), (0, 1, 2))(loc, alpha, scale),
          jax.grad(mc_kl, (0, 1, 2))(loc, alpha, scale),
          kl(a[:, None], a[None, :]), jax.grad(kl, (0, 1))(a[:, None], a[None, :]))


def test_symmetric_pareto_draws_log_probs_kl_and_gradients_are_finite_over_the_range():
  loc = jnp.array([-50.0, 3.0])[:, None, None]
  alpha = jnp.geomspace(0.5, 100.0, 9)[None, :, None]
  scale = jnp.geomspace(1e-2, 1e2, 5)[None, None, :]
  for value in jax.tree.leaves(_symmetric_pareto_extremes(loc, alpha, scale)):
    assert np.isfinite(value).all()


def test_symmetric_pareto_alpha_floor_keeps_even_the_largest_float32_draw_finite():
  floor = heads.apply_head(pvj.family_info("symmetric_pareto").heads["alpha"], jnp.float32(-1e4))
  assert float(floor) == 2.0
  # jax.random.exponential is -log1p(-u) with u on a 2^-23 grid below 1: at most 23 log 2.
  e_max = -jnp.log1p(-(1 - jnp.float32(2.0 ** -23)))
  assert float(jax.random.exponential(KEY, (100_000,)).max()) <= float(e_max)
  assert np.isfinite(float(jnp.float32(1e2) * jnp.expm1(e_max / floor)))
