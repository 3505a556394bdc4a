"""The Generalized Pareto and symmetric Pareto latents against scipy.stats, quadrature and
Monte Carlo (float32)."""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

import pareto_vae_jax as pvj
from pareto_vae_jax.distributions import heads
from pareto_vae_jax.distributions.generalized_pareto import GeneralizedPareto
from pareto_vae_jax.distributions.symmetric_pareto import SymmetricPareto, kl_symmetric_pareto
from reference import training_kl_estimate

KEY = jax.random.key(0)
# Jitted entry points: one compilation per shape instead of one per operation (eager dispatch).
rsample = jax.jit(pvj.rsample, static_argnums=2)
rsample_log = jax.jit(pvj.rsample_log, static_argnums=2)
log_prob = jax.jit(pvj.log_prob)
log_prob_log = jax.jit(pvj.log_prob_log)
QUANTILES = np.array([1e-4, 0.01, 0.2, 0.5, 0.8, 0.99, 0.9999])


def _genpareto(dist: GeneralizedPareto):
  scale, shape, loc = (np.asarray(p, np.float64) for p in dist.params)
  return stats.genpareto(c=shape, loc=loc, scale=scale)


def _symmetric_logpdf(z, loc, alpha, scale):
  """Half the Lomax density at |z - loc|: the definition, written with scipy."""
  return np.log(0.5) + stats.lomax.logpdf(np.abs(z - loc), alpha, scale=scale)


def _symmetric_cdf(z, loc, alpha, scale):
  return 0.5 + 0.5 * np.sign(z - loc) * stats.lomax.cdf(np.abs(z - loc), alpha, scale=scale)


def _symmetric_quantile_halves(loc, alpha, scale):
  """The quantile function on (0, 1/2) and at 1 - v for v in (0, 1/2), each from the tail."""
  return (lambda u: loc - stats.lomax.isf(2 * u, alpha, scale=scale),
          lambda v: loc + stats.lomax.isf(2 * v, alpha, scale=scale))


def _expectation_by_quadrature(f, lower_quantile, upper_quantile) -> float:
  """E[f(Z)] = int_0^1 f(F^-1(u)) du, split at 1/2 so that each tail keeps its precision."""
  kw = dict(limit=400, epsabs=1e-11, epsrel=1e-10)
  return (integrate.quad(lambda u: f(lower_quantile(u)), 0.0, 0.5, **kw)[0]
          + integrate.quad(lambda v: f(upper_quantile(v)), 0.0, 0.5, **kw)[0])


def _assert_pathwise_gradients_match(sample_fn, f, params, expected_grads, k=4.0):
  """Per-draw derivatives of f(z) (forward mode) average to each known d E[f] / d param.

  Their standard deviation gives the Monte Carlo standard error; None skips a parameter.
  """
  params = tuple(jnp.float32(p) for p in params)
  per_draw = jax.jit(jax.jacfwd(lambda ps: f(sample_fn(*ps))))(params)
  for d, expected in zip(per_draw, expected_grads(*(float(p) for p in params))):
    if expected is not None:
      d = np.asarray(d, np.float64)
      mean, stderr = d.mean(), d.std() / np.sqrt(d.size)
      assert abs(mean - expected) < k * stderr + 1e-6, (mean, stderr, expected)


# ------------------------------------------------------------------------------------------------
# Generalized Pareto: densities.

GPD_GRID = GeneralizedPareto(
    scale=jnp.array([0.5, 1.0, 2.0, 0.1, 3.0, 1.0, 10.0, 1.0]),
    shape=jnp.array([-0.5, -0.1, -1e-6, 0.0, 1e-6, 0.3, 1.0, 2.0]),
    loc=jnp.array([0.0, -1.0, 2.0, 0.0, 0.5, 0.0, -3.0, 1.0]))


def test_generalized_pareto_log_prob_matches_scipy_on_quantile_grid_for_both_signs_of_xi():
  ref = _genpareto(GPD_GRID)
  z = ref.ppf(QUANTILES[:, None]).astype(np.float32)  # (7, 8): bulk and both ends
  np.testing.assert_allclose(log_prob(GPD_GRID, z), ref.logpdf(z.astype(np.float64)),
                             rtol=2e-5, atol=2e-5)


def test_generalized_pareto_log_prob_log_matches_scipy_at_exp_where_loc_is_not_negative():
  dist = GeneralizedPareto(jnp.array([0.5, 0.1, 1.0, 1.0, 0.7]),
                           jnp.array([-0.5, 0.0, 0.3, 2.0, 1e-6]),
                           jnp.array([0.0, 0.0, 0.0, 1.0, 0.5]))
  ref = _genpareto(dist)
  log_z = np.log(ref.ppf(QUANTILES[:, None])).astype(np.float32)
  np.testing.assert_allclose(log_prob_log(dist, log_z),
                             ref.logpdf(np.exp(log_z.astype(np.float64))), rtol=2e-5, atol=2e-5)


def test_generalized_pareto_log_prob_is_minus_inf_exactly_where_scipy_is():
  dist = GeneralizedPareto(2.0, jnp.array([-0.5, 0.0, 0.5]), 1.0)  # xi < 0: support [1, 5)
  z = np.array([-3.0, 0.999, 1.0, 4.999, 5.0, 7.0], np.float32)[:, None]
  got = np.asarray(log_prob(dist, z))
  want = _genpareto(dist).logpdf(z.astype(np.float64))
  np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
  assert np.isfinite(got[~np.isneginf(want)]).all()


# Taylor expansion of log f = -log sigma - (1/xi + 1) log1p(xi y) at xi = 0:
# -log sigma - y + xi (y^2 / 2 - y) + O(xi^2).
@pytest.mark.parametrize("xi", [-1e-6, 0.0, 1e-6])
def test_generalized_pareto_log_prob_and_its_xi_derivative_are_continuous_through_xi_0(xi):
  scale, loc = 1.5, -0.5
  y = np.array([0.0, 1e-3, 0.3, 1.0, 4.0, 12.0], np.float32)
  z = jnp.asarray(loc + scale * y)
  value = log_prob(GeneralizedPareto(scale, xi, loc), z)
  np.testing.assert_allclose(value, stats.expon(loc=loc, scale=scale).logpdf(np.asarray(z)),
                             rtol=2e-5, atol=2e-5)
  d_xi = jax.jit(jax.vmap(jax.grad(lambda s, zi: pvj.log_prob(GeneralizedPareto(scale, s, loc),
                                                              zi)), (None, 0)))(jnp.float32(xi), z)
  y64 = (np.asarray(z, np.float64) - loc) / scale
  np.testing.assert_allclose(d_xi, y64 ** 2 / 2 - y64, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("xi", [-1e-6, 0.0, 1e-6])
def test_generalized_pareto_draws_and_their_xi_derivative_are_continuous_through_xi_0(xi):
  # z = mu + sigma expm1(xi E) / xi: at xi = 0, z = mu + sigma E and dz/dxi = sigma E^2 / 2.
  scale, loc = 1.5, -0.5
  sample = lambda s: pvj.rsample(KEY, GeneralizedPareto(scale, s, loc), (2000,))
  e = (np.asarray(rsample(KEY, GeneralizedPareto(scale, 0.0, loc), (2000,)), np.float64) - loc
       ) / scale
  z, dz = jax.jit(lambda s: jax.jvp(sample, (s,), (jnp.ones_like(s),)))(jnp.float32(xi))
  np.testing.assert_allclose(z, loc + scale * e, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dz, scale * e ** 2 / 2, rtol=1e-4, atol=1e-6)


def test_generalized_pareto_with_loc_sigma_over_xi_is_the_pareto_type_i():
  scale, xi = jnp.array([0.3, 2.0, 1.0]), jnp.array([0.25, 1.0, 5.0])
  gpd = GeneralizedPareto(scale, xi, scale / xi)
  pareto = pvj.Pareto(1 / xi, scale / xi)
  z = stats.pareto(b=1 / np.asarray(xi), scale=np.asarray(scale / xi)).ppf(
      QUANTILES[:, None]).astype(np.float32)
  np.testing.assert_allclose(log_prob(gpd, z), log_prob(pareto, z), rtol=2e-5, atol=2e-5)
  # In log space, also where z overflows float32 (log z = 300).
  log_z = jnp.array([0.5, 3.0, 40.0, 300.0])[:, None]
  np.testing.assert_allclose(log_prob_log(gpd, log_z), log_prob_log(pareto, log_z),
                             rtol=2e-5, atol=2e-5)
  # Both samplers invert the same Exp(1) draw: equal in law, and here draw by draw.
  np.testing.assert_allclose(rsample_log(KEY, gpd, (1000,)),
                             rsample_log(KEY, pareto, (1000,)), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Generalized Pareto: moments.


def test_generalized_pareto_mean_and_variance_match_scipy_including_infinite():
  xi = np.array([-0.5, 0.0, 0.3, 0.49, 0.5, 0.7, 1.0, 1.5], np.float32)
  dist = GeneralizedPareto(np.full(8, 1.3, np.float32), xi, np.full(8, -0.2, np.float32))
  ref = _genpareto(dist)
  np.testing.assert_allclose(pvj.mean(dist), ref.mean(), rtol=1e-5)
  finite = xi < 0.5  # scipy's variance is nan beyond, where the second moment is infinite
  np.testing.assert_allclose(pvj.variance(dist)[finite], ref.var()[finite], rtol=1e-4)
  np.testing.assert_array_equal(np.isinf(pvj.mean(dist)), xi >= 1)
  np.testing.assert_array_equal(np.isinf(pvj.variance(dist)), xi >= 0.5)


# xi on both sides of the series switch at |xi| = 0.1, and both signs.
@pytest.mark.parametrize("scale,xi", [(1.0, -0.7), (2.0, -0.1001), (1.0, -0.0999), (0.5, -1e-6),
                                      (1.0, 0.0), (3.0, 1e-6), (1.0, 0.05), (1.0, 0.0999),
                                      (1.0, 0.1001), (0.2, 0.6), (1.0, 3.0)])
def test_generalized_pareto_mean_log_matches_quadrature_of_log_z(scale, xi):
  ref = stats.genpareto(c=xi, scale=scale)
  expected = _expectation_by_quadrature(np.log, ref.ppf, ref.isf)
  np.testing.assert_allclose(float(pvj.mean_log(GeneralizedPareto(scale, xi))), expected,
                             rtol=2e-6, atol=1e-6)


def test_generalized_pareto_mean_log_is_nan_away_from_loc_0_where_it_has_no_closed_form():
  assert np.isnan(float(pvj.mean_log(GeneralizedPareto(1.0, 0.5, 2.0))))


# ------------------------------------------------------------------------------------------------
# Generalized Pareto: sampling and pathwise gradients.

GPD_SINGLE = [(1.0, -0.5, 0.0), (0.3, -0.05, 2.0), (2.0, 0.0, -1.0), (1.0, 1e-6, 0.0),
              (0.7, 0.4, 0.0), (1.0, 2.0, 3.0), (0.01, 1.0, 0.0)]


@pytest.mark.parametrize("params", GPD_SINGLE, ids=str)
def test_generalized_pareto_samples_pass_kolmogorov_smirnov_against_scipy(params):
  dist = GeneralizedPareto(*params)
  z = np.asarray(rsample(KEY, dist, (20_000,)), np.float64)
  assert np.isfinite(z).all()
  scale, xi, loc = params
  cdf = stats.expon(loc=loc, scale=scale).cdf if xi == 0 else _genpareto(dist).cdf
  result = stats.kstest(z, cdf)
  assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("params", [p for p in GPD_SINGLE if p[2] >= 0], ids=str)
def test_generalized_pareto_rsample_log_is_log_of_rsample_with_the_same_key(params):
  dist = GeneralizedPareto(*params)
  np.testing.assert_allclose(rsample_log(KEY, dist, (1000,)),
                             np.log(rsample(KEY, dist, (1000,))), rtol=1e-5, atol=1e-5)


def _d_mean_log_d_xi(xi):
  # d/dxi of E[log z] - log sigma + gamma = -log xi - psi(1 / xi), for xi > 0 (scipy, float64).
  return -1 / xi + special.polygamma(1, 1 / xi) / xi ** 2


GPD_GRADIENT_CASES = [
    # (params, f, sampler, [d E f / d scale, d / d shape, d / d loc])
    ((1.5, 0.2, 0.3), lambda z: z, pvj.rsample,
     lambda s, x, m: [1 / (1 - x), s / (1 - x) ** 2, 1.0]),
    ((0.7, -0.3, -1.0), lambda z: z, pvj.rsample,
     lambda s, x, m: [1 / (1 - x), s / (1 - x) ** 2, 1.0]),
    ((1.0, 0.6, 0.0), lambda log_z: log_z, pvj.rsample_log,
     lambda s, x, m: [1 / s, _d_mean_log_d_xi(x), None]),
]


@pytest.mark.parametrize("params,f,sampler,grads", GPD_GRADIENT_CASES,
                         ids=[str(c[0]) for c in GPD_GRADIENT_CASES])
def test_generalized_pareto_pathwise_gradients_match_derivatives_of_known_expectations(
    params, f, sampler, grads):
  sample = lambda *ps: sampler(KEY, GeneralizedPareto(*ps), (200_000,))
  _assert_pathwise_gradients_match(sample, f, params, grads)


# ------------------------------------------------------------------------------------------------
# Generalized Pareto: KL (none in closed form; the trainer's estimate).


def _gpd_kl_by_quadrature(q: GeneralizedPareto, p: GeneralizedPareto) -> float:
  rq, rp = _genpareto(q), _genpareto(p)
  return _expectation_by_quadrature(lambda z: rq.logpdf(z) - rp.logpdf(z), rq.ppf, rq.isf)


def test_generalized_pareto_kl_is_the_trainers_monte_carlo_estimate_and_it_matches_quadrature():
  assert not pvj.has_closed_form_kl(GeneralizedPareto, GeneralizedPareto)
  with pytest.raises(pvj.KLNotImplementedError):
    pvj.kl(GeneralizedPareto(1.0, 0.5), GeneralizedPareto(1.0, 0.5))
  info = pvj.family_info("generalized_pareto")
  q = GeneralizedPareto(jnp.array([0.3, 2.0, 1.0]), jnp.array([1.2, 0.05, 0.5]))
  p = info.standard_prior((3,), **info.latent_fixed)
  mean, se = training_kl_estimate(q, p, 100_000, KEY)  # one draw per example, as in training
  exact = [_gpd_kl_by_quadrature(GeneralizedPareto(*(v[i] for v in q.params)),
                                 GeneralizedPareto(*(v[i] for v in p.params))) for i in range(3)]
  assert np.all(np.abs(mean - exact) < 4 * se + 1e-4), (mean, exact, se)


# ------------------------------------------------------------------------------------------------
# Symmetric Pareto: density, moments, sampling, gradients.

SYM_LOCS = np.array([-3.0, 0.0, 40.0], np.float32)
SYM_ALPHAS = np.array([0.2, 0.5, 1.0, 2.5, 50.0], np.float32)
SYM_SCALES = np.array([0.01, 1.0, 100.0], np.float32)


def test_symmetric_pareto_log_prob_matches_half_the_lomax_density_on_both_sides_of_loc():
  loc, alpha, scale = np.meshgrid(SYM_LOCS, SYM_ALPHAS, SYM_SCALES, indexing="ij")
  dist = SymmetricPareto(loc, alpha, scale)
  t = np.minimum(stats.lomax.ppf(QUANTILES[:, None, None, None], alpha, scale=scale), 1e30)
  z = (loc + np.concatenate([-t[::-1], np.zeros((1,) + alpha.shape), t])).astype(np.float32)
  np.testing.assert_allclose(log_prob(dist, z),
                             _symmetric_logpdf(z.astype(np.float64), loc, alpha, scale),
                             rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("loc,alpha,scale", [(-2.0, 1.5, 2.0), (0.0, 2.5, 0.3), (30.0, 7.0, 10.0)])
def test_symmetric_pareto_moments_match_quadrature_where_finite(loc, alpha, scale):
  dist = SymmetricPareto(loc, alpha, scale)
  lower, upper = _symmetric_quantile_halves(loc, alpha, scale)
  mean = _expectation_by_quadrature(lambda z: z, lower, upper)
  np.testing.assert_allclose(float(pvj.mean(dist)), mean, rtol=1e-6, atol=1e-7 * scale)
  if alpha > 2:
    variance = _expectation_by_quadrature(lambda z: np.square(z - mean), lower, upper)
    np.testing.assert_allclose(float(pvj.variance(dist)), variance, rtol=1e-5)


def test_symmetric_pareto_moments_are_undefined_or_infinite_where_the_integrals_diverge():
  dist = SymmetricPareto(3.0, jnp.array([0.5, 1.0, 1.5, 2.0, 2.5]), 1.0)
  np.testing.assert_array_equal(np.isnan(pvj.mean(dist)), [True, True, False, False, False])
  np.testing.assert_array_equal(np.isinf(pvj.variance(dist)), [True, True, True, True, False])
  # The truncated integrals behind them keep growing: E|Z| at alpha = 1, E Z^2 at alpha = 2.
  for alpha, power in ((1.0, 1), (2.0, 2)):
    density = lambda t: np.exp(_symmetric_logpdf(t, 0.0, alpha, 1.0))
    truncated = [2 * integrate.quad(lambda t: t ** power * density(t), 0, top, limit=400)[0]
                 for top in (1e3, 1e6)]
    assert truncated[1] > 1.8 * truncated[0], truncated


# (loc, alpha, scale): the latent's alpha floor 0.5, and locations far from 0 at small and
# large scales.
SYM_SINGLE = [(-1.0, 0.5, 1.0), (5.0, 1.0, 0.01), (0.3, 2.5, 3.0), (-200.0, 40.0, 100.0)]


@pytest.mark.parametrize("params", SYM_SINGLE, ids=str)
def test_symmetric_pareto_samples_pass_kolmogorov_smirnov_against_the_reflected_lomax(params):
  z = np.asarray(rsample(KEY, SymmetricPareto(*params), (20_000,)), np.float64)
  assert np.isfinite(z).all()
  result = stats.kstest(z, lambda x: _symmetric_cdf(x, *params))
  assert result.pvalue > 1e-3, result


SYM_GRADIENT_CASES = [
    # (params, f, [d E f / d loc, d / d alpha, d / d scale]); loc and s held at their values
    # in f. E[Z] = loc for alpha > 1 (alpha > 2 here, so the per-draw derivatives in alpha and s
    # have finite variance).
    ((2.0, 3.5, 1.5), lambda z: z, lambda m, a, s: [1.0, 0.0, 0.0]),
    # log(1 + |Z - loc| / s) is Exponential(alpha): its mean is 1 / alpha, whatever loc is.
    ((0.5, 0.7, 2.0), lambda z: jnp.log1p(jnp.abs(z - 0.5) / 2.0),
     lambda m, a, s: [0.0, -1 / a ** 2, None]),
    # E|Z - loc| = s / (alpha - 1), the Lomax mean.
    ((-1.0, 3.5, 1.5), lambda z: jnp.abs(z + 1.0),
     lambda m, a, s: [0.0, -s / (a - 1) ** 2, 1 / (a - 1)]),
]


@pytest.mark.parametrize("params,f,grads", SYM_GRADIENT_CASES,
                         ids=[str(c[0]) for c in SYM_GRADIENT_CASES])
def test_symmetric_pareto_pathwise_gradients_match_derivatives_of_known_expectations(params, f,
                                                                                     grads):
  sample = lambda *ps: pvj.rsample(KEY, SymmetricPareto(*ps), (200_000,))
  _assert_pathwise_gradients_match(sample, f, params, grads)


# ------------------------------------------------------------------------------------------------
# Symmetric Pareto: KL (closed form for equal locations and scales only; the trainer's estimate).

KL_ALPHAS = (0.2, 1.5, 50.0)


def _symmetric_kl_by_quadrature(q_params, p_params) -> float:
  log_ratio = lambda z: _symmetric_logpdf(z, *q_params) - _symmetric_logpdf(z, *p_params)
  return _expectation_by_quadrature(log_ratio, *_symmetric_quantile_halves(*q_params))


@pytest.mark.parametrize("loc,scale", [(0.0, 0.01), (-3.0, 1.0), (50.0, 100.0)])
def test_symmetric_pareto_kl_with_a_shared_loc_and_scale_matches_quadrature(loc, scale):
  pairs = list(itertools.product(KL_ALPHAS, KL_ALPHAS))
  a_q, a_p = (jnp.array(v) for v in zip(*pairs))
  expected = [_symmetric_kl_by_quadrature((loc, alpha_q, scale), (loc, alpha_p, scale))
              for alpha_q, alpha_p in pairs]
  np.testing.assert_allclose(kl_symmetric_pareto(a_q, a_p), expected, rtol=2e-5, atol=1e-5)


def test_symmetric_pareto_kl_of_a_tail_index_with_itself_is_exactly_zero():
  alpha = jnp.array([1e-3, 0.2, 1.0, 100.0, 1e3])
  np.testing.assert_array_equal(kl_symmetric_pareto(alpha, alpha), 0.0)


def test_symmetric_pareto_kl_is_the_trainers_monte_carlo_estimate_and_it_matches_quadrature():
  # Different locations have no closed form, so no KL is registered for the pair at all.
  assert not pvj.has_closed_form_kl(SymmetricPareto, SymmetricPareto)
  with pytest.raises(pvj.KLNotImplementedError):
    pvj.kl(SymmetricPareto(0.0, 2.0), SymmetricPareto(0.0, 2.0))
  info = pvj.family_info("symmetric_pareto")
  q = SymmetricPareto(jnp.array([0.0, 1.5, -0.3, 4.0, 0.0]),
                      jnp.array([2.0, 0.5, 5.0, 30.0, 0.7]), 1.0)
  p = info.standard_prior((5,), **info.latent_fixed)
  mean, se = training_kl_estimate(q, p, 100_000, KEY)  # one draw per example, as in training
  params = lambda d, i: tuple(float(v[i]) for v in d.params)
  exact = np.array([_symmetric_kl_by_quadrature(params(q, i), params(p, i)) for i in range(5)])
  assert np.all(np.abs(mean - exact) < 4 * se + 1e-4), (mean, exact, se)
  # Where the locations agree, the closed form is the same number.
  same = np.asarray(q.loc) == np.asarray(p.loc)
  np.testing.assert_allclose(exact[same], kl_symmetric_pareto(np.asarray(q.alpha)[same],
                                                              np.asarray(p.alpha)[same]),
                             rtol=2e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Both families: registration, transformations, extremes.

FAMILIES = {"generalized_pareto": GeneralizedPareto(1.3, 0.4, 0.2),
            "symmetric_pareto": SymmetricPareto(0.7, 1.3, 0.4)}


# Raw encoder outputs over the range where draws are documented finite: any for both, the
# Generalized Pareto being drawn in log space and the symmetric Pareto's alpha = 0.5 +
# softplus(raw) staying >= 0.5.
@pytest.mark.parametrize("name,raw", [("generalized_pareto", (-1e4, -5.0, 0.0, 5.0, 1e2)),
                                      ("symmetric_pareto", (-1e4, -5.0, 0.0, 5.0, 1e2))])
def test_the_latent_heads_and_standard_prior_give_valid_finite_codes(name, raw):
  info = pvj.family_info(name)
  assert info.cls is type(FAMILIES[name])
  raw = jnp.array(raw)
  values = [jnp.full(5, info.latent_fixed[n]) if n in info.latent_fixed
            else heads.apply_head(info.heads[n], raw) for n in info.param_names]
  q, p = info.cls(*values), info.standard_prior((5,), **info.latent_fixed)
  draw = (rsample_log if info.rsample_log else rsample)(KEY, q, (256,))
  score = log_prob_log if info.log_prob_log else log_prob
  assert np.isfinite(score(q, draw)).all() and np.isfinite(score(p, draw)).all()
  # Both standard priors have tail index 2: finite mean, infinite variance.
  assert np.isfinite(pvj.mean(p)).all() and np.isinf(pvj.variance(p)).all()


@pytest.mark.parametrize("name", FAMILIES)
def test_rsample_and_log_prob_agree_under_vmap_and_have_finite_gradients_under_jit(name):
  dist = FAMILIES[name]
  keys = jax.random.split(KEY, 2)
  plain = jnp.stack([rsample(k, dist, (16,)) for k in keys])
  np.testing.assert_allclose(jax.jit(jax.vmap(lambda k: pvj.rsample(k, dist, (16,))))(keys),
                             plain, rtol=1e-6)
  batched = jax.tree.map(lambda v: v * jnp.linspace(0.5, 2.0, 4), dist)
  per_dist = jax.jit(jax.vmap(pvj.log_prob, (0, None)))(batched, plain[0])
  np.testing.assert_allclose(per_dist, log_prob(batched, plain[0, :, None]).T, rtol=1e-6)
  loss = lambda d: jnp.mean(jnp.tanh(pvj.rsample(KEY, d, (256,)))
                            + pvj.log_prob(d, jax.lax.stop_gradient(plain)).mean())
  grads = jax.jit(jax.grad(loss))(dist)
  for param, g in zip(dist.param_names, grads.params):
    assert np.isfinite(g) and g != 0, (param, g)


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


@functools.partial(jax.jit, static_argnums=0)
def _generalized_pareto_extremes(in_log, scale, xi):
  """Draws, their log-densities, and the gradient of the trainer's MC KL (through the draws)."""
  sampler, score = ((pvj.rsample_log, pvj.log_prob_log) if in_log
                    else (pvj.rsample, pvj.log_prob))
  fn = lambda s, x: sampler(KEY, GeneralizedPareto(s, x), (2048,))
  mc_kl = lambda s, x: (score(GeneralizedPareto(s, x), fn(s, x))
                        - score(GeneralizedPareto(1.0, 0.5), fn(s, x))).mean()
  r = fn(scale, xi)
  return r, score(GeneralizedPareto(scale, xi), r), jax.grad(mc_kl, (0, 1))(scale, xi)


@pytest.mark.parametrize("in_log", [False, True])
def test_generalized_pareto_draws_log_probs_and_gradients_are_finite_over_the_range(in_log):
  scale = jnp.geomspace(1e-2, 1e2, 5)[None, :]
  xi = jnp.geomspace(1e-4, 2.0, 9)[:, None]
  for value in jax.tree.leaves(_generalized_pareto_extremes(in_log, scale, xi)):
    assert np.isfinite(value).all()


def test_generalized_pareto_log_space_stays_finite_where_draws_overflow():
  dist = GeneralizedPareto(1.0, jnp.array([10.0, 50.0]))  # draws up to e^(15.9 xi)
  log_z = rsample_log(KEY, dist, (4096,))
  assert np.isinf(rsample(KEY, dist, (4096,))).any()
  assert np.isfinite(log_z).all() and np.isfinite(log_prob_log(dist, log_z)).all()
  # log(1 + xi z / sigma) / xi is the Exp(1) draw: KS in log space.
  xi = np.asarray(dist.shape, np.float64)
  e = np.logaddexp(0.0, np.asarray(log_z, np.float64) + np.log(xi)) / xi
  for column in e.T:
    assert stats.kstest(column, stats.expon.cdf).pvalue > 1e-3
