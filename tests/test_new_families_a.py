"""Student-t, Lomax and Weibull latents against independent references.

Densities, moments and samplers against scipy.stats (t, lomax, weibull_min); E[log z] and the
KLs against scipy quadrature; pathwise gradients against the derivative of a known expectation,
within Monte Carlo standard errors.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import integrate, special, stats

import pareto_vae_jax as pvj
from pareto_vae_jax.distributions import weibull
from pareto_vae_jax.distributions.lomax import Lomax
from pareto_vae_jax.distributions.student_t import StudentT
from pareto_vae_jax.distributions.weibull import Weibull, kl_weibull
from test_gradients import assert_within_standard_errors, per_sample_derivative

KEY = jax.random.key(13)
# Sample sizes, shared between tests: the Student-t's gamma sampler compiles once per shape
# (seconds each), so its draws come in these few shapes.
DRAWS = 20_000  # Kolmogorov-Smirnov tests and Monte Carlo KLs
N = 50_000  # per-sample pathwise derivatives
M = 4096  # gradients of a batch mean
SETTINGS = settings(max_examples=20, deadline=None)
log_uniform = lambda lo, hi: st.floats(np.log(lo), np.log(hi)).map(np.exp)


def scipy_dist(dist):
  """The scipy.stats frozen distribution equal to ``dist`` (float64 parameters)."""
  params = [np.asarray(p, np.float64) for p in dist.params]
  if isinstance(dist, StudentT):
    df, loc, scale = params
    return stats.t(df, loc=loc, scale=scale)
  if isinstance(dist, Lomax):
    alpha, scale = params
    return stats.lomax(alpha, scale=scale)
  if isinstance(dist, Weibull):
    k, scale = params
    return stats.weibull_min(k, scale=scale)
  raise TypeError(type(dist))


def weibull_log_dist(dist):
  """The law of log Z for a Weibull: Gumbel (minimum) with location log lam and scale 1 / k."""
  k, scale = (np.asarray(p, np.float64) for p in dist.params)
  return stats.gumbel_l(loc=np.log(scale), scale=1 / k)


def expectation_quadrature(ref, f) -> float:
  """E[f(Z)] for a scipy distribution by quadrature over u in (0, 1): ppf below the median,
  isf above (as in tests/reference.py), so heavy tails keep their precision."""
  opts = dict(limit=400, epsabs=1e-11, epsrel=1e-10)
  lower, _ = integrate.quad(lambda u: f(ref.ppf(u)), 0.0, 0.5, **opts)
  upper, _ = integrate.quad(lambda v: f(ref.isf(v)), 0.0, 0.5, **opts)
  return lower + upper


def kl_quadrature(sq, sp) -> float:
  """KL(q || p) = E_q[log q - log p] for scipy distributions (reference.py's method, whose
  ``scipy_dist`` does not know these families)."""
  return expectation_quadrature(sq, lambda z: sq.logpdf(z) - sp.logpdf(z))


# ------------------------------------------------------------------------------------------------
# Registration.

FAMILIES = {"student_t": StudentT, "lomax": Lomax, "weibull": Weibull}


@pytest.mark.parametrize("name", FAMILIES)
def test_family_is_registered_with_a_known_head_for_every_parameter(name):
  info = pvj.family_info(name)
  assert info.cls is FAMILIES[name] and name in pvj.family_names()
  assert set(info.heads) == set(info.param_names)
  assert all(head in pvj.HEADS for head in info.heads.values())
  assert (info.rsample_log is None) == (name == "student_t")
  assert (info.mean_log is None) == (name == "student_t")


@pytest.mark.parametrize("name,params", [("student_t", (5.0, 0.0, 1.0)), ("lomax", (1.0, 1.0)),
                                         ("weibull", (1.0, 1.0))])
def test_standard_prior_takes_the_trainers_arguments_and_has_the_documented_parameters(name,
                                                                                      params):
  info = pvj.family_info(name)
  prior = info.standard_prior((2, 3), **info.latent_fixed)  # what models.VAE.prior_dist passes
  assert type(prior) is info.cls and prior.batch_shape == (2, 3)
  for value, expected in zip(prior.params, params):
    np.testing.assert_array_equal(value, expected)


def test_weibull_standard_prior_is_the_unit_exponential():
  z = np.array([0.01, 0.5, 2.0, 30.0], np.float32)
  np.testing.assert_allclose(pvj.log_prob(pvj.family_info("weibull").standard_prior((4,)), z),
                             stats.expon.logpdf(z), rtol=1e-6, atol=1e-6)


def test_closed_form_kl_is_registered_for_weibull_only():
  assert pvj.has_closed_form_kl(Weibull, Weibull)
  for dist in (StudentT(3.0, 0.0, 1.0), Lomax(2.0, 1.0)):
    assert not pvj.has_closed_form_kl(type(dist), type(dist))
    with pytest.raises(pvj.KLNotImplementedError, match="Monte Carlo"):
      pvj.kl(dist, dist)


# ------------------------------------------------------------------------------------------------
# Densities and moments.

CASES = [
    StudentT(jnp.array([0.3, 1.0, 2.5, 7.0, 30.0, 1e4]),
             jnp.array([-2.0, 0.0, 3.0, 0.5, -1.0, 10.0]),
             jnp.array([0.1, 1.0, 5.0, 2.0, 0.3, 1.0])),
    Lomax(jnp.array([0.05, 0.8, 1.5, 2.5, 40.0]), jnp.array([1.0, 0.2, 3.0, 1.0, 10.0])),
    Weibull(jnp.array([0.2, 0.5, 1.0, 2.5, 40.0]), jnp.array([1.0, 0.2, 3.0, 1.0, 10.0])),
]
IDS = [type(d).__name__ for d in CASES]


@pytest.mark.parametrize("dist", CASES, ids=IDS)
def test_log_prob_matches_scipy_on_quantile_grid(dist):
  ref = scipy_dist(dist)
  u = np.array([1e-4, 0.01, 0.2, 0.5, 0.8, 0.99, 0.9999])[:, None]
  z = ref.ppf(u)  # shape (7, batch): points across the bulk and both tails
  z = np.clip(z, -1e30, 1e30).astype(np.float32)
  np.testing.assert_allclose(pvj.log_prob(dist, z), ref.logpdf(z.astype(np.float64)), rtol=2e-5,
                             atol=2e-5)


@pytest.mark.parametrize("dist", CASES[1:], ids=IDS[1:])
def test_log_prob_log_equals_scipy_log_density_at_exp(dist):
  ref = scipy_dist(dist)
  log_z = np.log(ref.ppf(np.array([1e-4, 0.01, 0.5, 0.99])[:, None])).astype(np.float32)
  np.testing.assert_allclose(pvj.log_prob_log(dist, log_z),
                             ref.logpdf(np.exp(log_z.astype(np.float64))), rtol=2e-5, atol=2e-5)


def test_log_prob_at_and_beyond_the_edges_of_the_support():
  lomax = Lomax(2.5, 4.0)
  np.testing.assert_allclose(float(pvj.log_prob(lomax, 0.0)), stats.lomax(2.5, scale=4.0).logpdf(0),
                             rtol=1e-6)  # 0 is in the Lomax support, with density alpha / lam
  assert float(pvj.log_prob(lomax, -1e-3)) == -np.inf
  np.testing.assert_array_equal(pvj.log_prob(Weibull(0.5, 1.0), jnp.array([-1.0, 0.0, jnp.inf])),
                                -np.inf)
  np.testing.assert_array_equal(
      pvj.log_prob(StudentT(0.5, 0.0, 1.0), jnp.array([-jnp.inf, jnp.inf])), -np.inf)


def test_student_t_log_prob_is_exact_where_u_squared_overflows_float32():
  dist = StudentT(0.5, 1.0, 1e-3)
  z = np.array([-3e36, 1e20, 2e38], np.float32)  # ((z - loc) / scale)^2 > 3.4e38
  np.testing.assert_allclose(pvj.log_prob(dist, z), scipy_dist(dist).logpdf(z.astype(np.float64)),
                             rtol=1e-6)


@pytest.mark.parametrize("df", [0.01, 3.0, 9.99, 10.0, 10.01, 300.0, 1e6])
def test_student_t_normalizer_is_exact_on_both_sides_of_its_series_switch(df):
  # The density at the median is the normalizer alone; from df = 10 on it is a series.
  np.testing.assert_allclose(float(pvj.log_prob(StudentT(df, 0.0, 1.0), 0.0)),
                             stats.t(df).logpdf(0.0), rtol=2e-6)


MOMENT_CASES = [
    StudentT(jnp.array([0.5, 1.0, 1.5, 2.0, 2.5, 30.0]),
             jnp.array([1.0, -2.0, 3.0, 0.5, -1.0, 4.0]),
             jnp.array([2.0, 1.0, 0.5, 3.0, 1.5, 0.7])),
    Lomax(jnp.array([0.5, 1.0, 1.5, 2.0, 2.5, 40.0]), jnp.array([1.0, 2.0, 0.5, 3.0, 1.5, 7.0])),
    Weibull(jnp.array([0.1, 0.5, 1.0, 3.0, 100.0, 1e4]), jnp.array([1.0, 2.0, 0.5, 3.0, 1.5, 7.0])),
]


@pytest.mark.parametrize("dist", MOMENT_CASES, ids=IDS)
def test_mean_and_variance_match_scipy_including_infinite_and_undefined(dist):
  # assert_allclose requires inf and nan at the same positions as scipy's.
  ref = scipy_dist(dist)
  np.testing.assert_allclose(pvj.mean(dist), ref.mean(), rtol=1e-5)
  np.testing.assert_allclose(pvj.variance(dist), ref.var(), rtol=1e-4)


def test_student_t_moments_follow_scipys_convention_where_they_diverge():
  dist = StudentT(jnp.array([0.5, 1.0, 1.5, 2.0, 2.5]), 3.0, 1.0)
  np.testing.assert_array_equal(pvj.mean(dist), [np.inf, np.inf, 3.0, 3.0, 3.0])
  np.testing.assert_array_equal(pvj.variance(dist), [np.nan, np.nan, np.inf, np.inf, 5.0])


def test_weibull_variance_keeps_its_precision_where_the_two_gamma_values_nearly_cancel():
  # Var = lam^2 [Gamma(1 + 2/k) - Gamma(1 + 1/k)^2] ~ lam^2 zeta(2) / k^2: at k = 1e3 the
  # naive float32 difference keeps about one significant digit.
  k = np.array([30.0, 100.0, 1e3, 1e4], np.float32)
  np.testing.assert_allclose(pvj.variance(Weibull(k, 2.0)),
                             stats.weibull_min(k.astype(np.float64), scale=2.0).var(), rtol=2e-6)


def test_weibull_moments_overflow_to_inf_not_nan():
  dist = Weibull(jnp.array([0.01, 0.02]), 1.0)  # Gamma(101) = 9e157, Gamma(51) = 3e64
  assert np.isposinf(pvj.mean(dist)).all() and np.isposinf(pvj.variance(dist)).all()
  assert np.isfinite(pvj.mean_log(dist)).all()


@pytest.mark.parametrize("dist", [
    Lomax(jnp.array([0.05, 0.5, 1.0, 3.0, 40.0]), jnp.array([2.0, 1.0, 0.3, 5.0, 1.0])),
    Weibull(jnp.array([0.2, 1.0, 5.0, 60.0]), jnp.array([2.0, 1.0, 0.3, 5.0])),
], ids=["Lomax", "Weibull"])
def test_mean_log_matches_quadrature_of_log_z(dist):
  singles = [type(dist)(*(p[i] for p in dist.params)) for i in range(dist.batch_shape[0])]
  expected = [expectation_quadrature(scipy_dist(d), np.log) for d in singles]
  np.testing.assert_allclose(pvj.mean_log(dist), expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# Samplers.

SINGLE = [
    StudentT(0.7, 1.0, 2.0),
    StudentT(3.0, -1.0, 0.5),
    StudentT(30.0, 0.0, 1.0),
    Lomax(0.3, 1.0),
    Lomax(2.5, 0.01),
    Lomax(40.0, 5.0),
    Weibull(0.3, 1.0),
    Weibull(1.0, 2.0),
    Weibull(8.0, 0.1),
]
SINGLE_IDS = [repr(tuple(float(p) for p in d.params)).join((type(d).__name__, "")) for d in SINGLE]


@pytest.mark.parametrize("dist", SINGLE, ids=SINGLE_IDS)
def test_samples_pass_kolmogorov_smirnov_against_scipy_cdf(dist):
  z = np.asarray(pvj.rsample(jax.random.key(0), dist, (DRAWS,)), np.float64)
  assert np.isfinite(z).all()
  result = stats.kstest(z, scipy_dist(dist).cdf)
  assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("dist", SINGLE[3:], ids=SINGLE_IDS[3:])
def test_rsample_log_is_log_of_rsample_with_the_same_key(dist):
  key = jax.random.key(3)
  np.testing.assert_allclose(np.exp(pvj.rsample_log(key, dist, (1000,))),
                             pvj.rsample(key, dist, (1000,)), rtol=1e-5)


def lomax_log_cdf_of_log_z(alpha, scale):
  # P(log Z <= s) = 1 - (1 + e^s / lam)^-alpha, with log(1 + e^s / lam) = logaddexp(0, s - log lam).
  return lambda s: -np.expm1(-alpha * np.logaddexp(0.0, s - np.log(scale)))


@pytest.mark.parametrize("dist,cdf", [
    (Lomax(0.01, 2.0), lomax_log_cdf_of_log_z(0.01, 2.0)),  # z overflows for ~40% of draws
    (Weibull(0.01, 3.0), weibull_log_dist(Weibull(0.01, 3.0)).cdf),  # z under/overflows
], ids=["Lomax", "Weibull"])
def test_rsample_log_passes_kolmogorov_smirnov_where_z_leaves_float32(dist, cdf):
  log_z = np.asarray(pvj.rsample_log(jax.random.key(1), dist, (20_000,)), np.float64)
  assert np.isfinite(log_z).all() and np.abs(log_z).max() > 89  # exp(log_z) is out of range
  result = stats.kstest(log_z, cdf)
  assert result.pvalue > 1e-3, result


@pytest.mark.parametrize("alpha", [1e-2, 0.5, 1e2, 1e4, 1e7])
def test_lomax_rsample_log_is_the_float64_inverse_cdf_of_its_exponential_draw(alpha):
  # The same key gives the same E; float64 log(expm1(E / alpha)) checks both branches of the
  # float32 arithmetic, including E / alpha below the smallest normal float32 (alpha = 1e7).
  shape = (4096,)
  log_e = np.asarray(weibull.log_standard_exponential(KEY, shape, jnp.float32), np.float64)
  x = np.exp(log_e) / alpha
  expected = np.log(0.3) + np.where(x < 700, np.log(np.expm1(np.minimum(x, 700))), x)
  got = pvj.rsample_log(KEY, Lomax(jnp.full(shape, alpha), 0.3))
  np.testing.assert_allclose(got, expected, rtol=1e-6, atol=2e-6)


def test_log_standard_exponential_is_finite_and_distributed_as_log_of_exp_one():
  log_e = np.asarray(weibull.log_standard_exponential(KEY, (20_000,), jnp.float32), np.float64)
  assert np.isfinite(log_e).all()
  # log E for E ~ Exp(1) is Gumbel (minimum) with location 0 and scale 1.
  assert stats.kstest(log_e, stats.gumbel_l.cdf).pvalue > 1e-3


def test_sample_shape_prepends_to_batch_shape():
  for dist in (StudentT(jnp.ones((2, 3)), 0.0, 1.0), Lomax(jnp.ones((2, 3))),
               Weibull(jnp.ones((2, 3)))):
    # Shapes only: eval_shape traces without compiling (the gamma sampler compiles slowly).
    assert jax.eval_shape(lambda: pvj.rsample(KEY, dist, (5, 4))).shape == (5, 4, 2, 3)
    assert jax.eval_shape(lambda: pvj.rsample(KEY, dist, 5)).shape == (5, 2, 3)


# ------------------------------------------------------------------------------------------------
# Pathwise gradients: E[f(z)] in closed form, its derivative per parameter (None: not checked,
# where the per-sample derivative has infinite variance).


def _student_t_abs_moment(df, scale):
  # E|z - loc| = scale sqrt(df) Gamma((df-1)/2) / (sqrt(pi) Gamma(df/2)), df > 1.
  return scale * np.sqrt(df) * np.exp(special.gammaln((df - 1) / 2) - special.gammaln(df / 2)
                                      ) / np.sqrt(np.pi)


GRADIENT_CASES = [
    # E|z| at loc = 0; d/d loc is E[sign z] = 0.
    (StudentT, (6.0, 0.0, 1.5), jnp.abs, lambda df, m, s: [
        _student_t_abs_moment(df, s) * (1 / (2 * df) + (special.digamma((df - 1) / 2)
                                                        - special.digamma(df / 2)) / 2),
        0.0, _student_t_abs_moment(df, 1.0)]),
    # E log|z| = log scale + (log df + digamma(1/2) - digamma(df/2)) / 2 at loc = 0, any df.
    (StudentT, (0.5, 0.0, 2.0), lambda z: jnp.log(jnp.abs(z)),
     lambda df, m, s: [1 / (2 * df) - special.polygamma(1, df / 2) / 4, None, 1 / s]),
    # E log z = log lam - euler_gamma - digamma(alpha).
    (Lomax, (0.5, 2.0), jnp.log, lambda a, s: [-special.polygamma(1, a), 1 / s]),
    (Lomax, (3.0, 0.7), jnp.log, lambda a, s: [-special.polygamma(1, a), 1 / s]),
    # E z = lam / (alpha - 1).
    (Lomax, (5.0, 1.5), lambda z: z, lambda a, s: [-s / (a - 1) ** 2, 1 / (a - 1)]),
    # E log z = log lam - euler_gamma / k.
    (Weibull, (0.4, 2.0), jnp.log, lambda k, s: [np.euler_gamma / k ** 2, 1 / s]),
    # E z = lam Gamma(1 + 1/k).
    (Weibull, (2.5, 0.5), lambda z: z, lambda k, s: [
        -s * special.gamma(1 + 1 / k) * special.digamma(1 + 1 / k) / k ** 2,
        special.gamma(1 + 1 / k)]),
]


@pytest.mark.parametrize("family,params,f,grads", GRADIENT_CASES,
                         ids=[f"{c[0].__name__}{c[1]}-{i}" for i, c in enumerate(GRADIENT_CASES)])
def test_pathwise_gradient_matches_derivative_of_known_expectation(family, params, f, grads):
  params = [jnp.float32(p) for p in params]
  sample = lambda *ps: pvj.rsample(KEY, family(*ps), (N,))
  for index, expected in enumerate(grads(*(float(p) for p in params))):
    if expected is not None:
      assert_within_standard_errors(per_sample_derivative(sample, f, params, index), expected)


@pytest.mark.parametrize("dist", [StudentT(2.0, 0.3, 1.2), Lomax(1.3, 1.2), Weibull(1.3, 1.2)],
                         ids=["StudentT", "Lomax", "Weibull"])
def test_grad_reaches_every_parameter_through_rsample_and_log_prob(dist):
  draws = jax.grad(lambda d: jnp.mean(jnp.tanh(pvj.rsample(KEY, d, (M,)))))(dist)
  density = jax.grad(lambda d: jnp.sum(pvj.log_prob(d, jnp.array([0.3, 1.0, 4.0]))))(dist)
  for name, g_draw, g_density in zip(dist.param_names, draws.params, density.params):
    assert np.isfinite(g_draw) and g_draw != 0, (name, g_draw)
    assert np.isfinite(g_density) and g_density != 0, (name, g_density)


@pytest.mark.parametrize("dist", [
    StudentT(jnp.array([0.8, 3.0, 40.0]), jnp.array([-1.0, 0.0, 2.0]), jnp.array([0.5, 1.0, 3.0])),
    Lomax(jnp.array([0.3, 2.0, 50.0]), jnp.array([0.5, 1.0, 3.0])),
    Weibull(jnp.array([0.3, 2.0, 50.0]), jnp.array([0.5, 1.0, 3.0])),
], ids=["StudentT", "Lomax", "Weibull"])
def test_rsample_and_log_prob_are_unchanged_under_jit_and_vmap(dist):
  # As the trainer draws: jit(vmap(rsample)) with one key per example.
  keys = jax.random.split(KEY, dist.batch_shape[0])
  one_by_one = jnp.stack([pvj.rsample(k, type(dist)(*(p[i] for p in dist.params)), (DRAWS,))
                          for i, k in enumerate(keys)])
  jitted = jax.jit(jax.vmap(lambda k, d: pvj.rsample(k, d, (DRAWS,))))(keys, dist)
  # Under jit XLA fuses loc + scale * t (FMA), moving a draw by up to an ulp of loc.
  np.testing.assert_allclose(jitted, one_by_one, rtol=1e-5, atol=1e-6)
  z = jnp.abs(one_by_one[:, :7].T) + 0.1  # (7, batch), inside every support
  eager = pvj.log_prob(dist, z)
  np.testing.assert_allclose(jax.jit(pvj.log_prob)(dist, z), eager, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(jax.vmap(pvj.log_prob, (0, 1), 1)(dist, z), eager, rtol=1e-6,
                             atol=1e-6)


# ------------------------------------------------------------------------------------------------
# KL divergences.

WEIBULL_K, WEIBULL_SCALES = (0.5, 1.0, 2.5, 8.0), (0.5, 3.0)
WEIBULL_PAIRS = [((k1, l1), (k2, l2)) for k1, l1, k2, l2 in
                 itertools.product(WEIBULL_K, WEIBULL_SCALES, WEIBULL_K, WEIBULL_SCALES)]


@pytest.mark.parametrize("q_params,p_params", WEIBULL_PAIRS[::3] + WEIBULL_PAIRS[1::9])
def test_weibull_kl_matches_quadrature(q_params, p_params):
  q, p = Weibull(*q_params), Weibull(*p_params)
  # KL is invariant under z -> log z, where both laws are Gumbel: the quadrature runs there.
  expected = kl_quadrature(weibull_log_dist(q), weibull_log_dist(p))
  np.testing.assert_allclose(float(pvj.kl(q, p)), expected, rtol=2e-5, atol=1e-5)
  np.testing.assert_allclose(float(kl_weibull(*q_params, *p_params)), expected, rtol=2e-5,
                             atol=1e-5)


@pytest.mark.parametrize("scale_q,scale_p", [(1.0, 1.0), (0.2, 3.0), (50.0, 0.5)])
def test_weibull_kl_with_unit_concentrations_is_the_exponential_kl(scale_q, scale_p):
  # KL(Exp(rate 1/lam_q) || Exp(rate 1/lam_p)) = log(lam_p / lam_q) + lam_q / lam_p - 1.
  expected = np.log(scale_p / scale_q) + scale_q / scale_p - 1
  np.testing.assert_allclose(float(kl_weibull(1.0, scale_q, 1.0, scale_p)), expected, rtol=1e-5,
                             atol=1e-7)


def test_weibull_kl_of_identical_distributions_is_exactly_zero_at_extremes():
  for q in (Weibull(1e-2, 1e2), Weibull(1e2, 1e-2), Weibull(1e-3, 1e-3), Weibull(1e3, 1e3),
            Weibull(0.7, 2.0)):
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


MC_PAIRS = [
    (Weibull(0.5, 2.0), Weibull(1.0, 1.0)),
    (Weibull(3.0, 0.5), Weibull(1.5, 1.0)),
    (Weibull(1.0, 1.0), Weibull(0.3, 2.0)),
]


@pytest.mark.parametrize("q,p", MC_PAIRS)
def test_weibull_monte_carlo_kl_agrees_with_closed_form_within_standard_errors(q, p):
  # The log-space path the trainer takes for positive families.
  log_z = pvj.rsample_log(jax.random.key(7), q, (100_000,))
  ratio = np.asarray(pvj.log_prob_log(q, log_z) - pvj.log_prob_log(p, log_z), np.float64)
  estimate, stderr = ratio.mean(), ratio.std() / np.sqrt(ratio.size)
  closed = float(pvj.kl(q, p))
  assert abs(estimate - closed) < 4 * stderr + 1e-4, (estimate, stderr, closed)


@pytest.mark.parametrize("q,p", [
    (StudentT(3.0, 0.5, 0.7), StudentT(5.0, 0.0, 1.0)),
    (StudentT(0.8, -1.0, 2.0), StudentT(2.0, 0.0, 1.0)),
    (Lomax(2.0, 0.5), Lomax(1.0, 1.0)),
    (Lomax(0.7, 3.0), Lomax(1.5, 1.0)),
], ids=["StudentT-light", "StudentT-heavy", "Lomax-light", "Lomax-heavy"])
def test_monte_carlo_kl_without_closed_form_agrees_with_quadrature(q, p):
  # The estimate the trainer falls back to: log q(z) - log p(z) at draws from q.
  z = pvj.rsample(jax.random.key(8), q, (DRAWS,))
  ratio = np.asarray(pvj.log_prob(q, z) - pvj.log_prob(p, z), np.float64)
  estimate, stderr = ratio.mean(), ratio.std() / np.sqrt(ratio.size)
  expected = kl_quadrature(scipy_dist(q), scipy_dist(p))
  assert abs(estimate - expected) < 4 * stderr + 1e-4, (estimate, stderr, expected)


@pytest.mark.parametrize("alpha_q,alpha_p,scale", [(0.5, 2.0, 1.0), (3.0, 0.7, 0.1),
                                                   (40.0, 1.0, 7.0)])
def test_lomax_kl_with_a_shared_scale_is_the_pareto_kl(alpha_q, alpha_p, scale):
  # 1 + z / lam is Pareto(alpha, 1) and KL is invariant under that bijection (module docstring).
  expected = kl_quadrature(stats.lomax(alpha_q, scale=scale), stats.lomax(alpha_p, scale=scale))
  np.testing.assert_allclose(float(pvj.kl_pareto(alpha_q, alpha_p)), expected, rtol=2e-5,
                             atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Extremes: values and gradients stay finite over parameters in [1e-2, 1e2] (float32).


def _draws_and_grads(sample_fn, dist):
  """Draws and the gradient of their mean with respect to every parameter, in one pass."""
  def batch_mean(d):
    draws = sample_fn(KEY, d, (M,))
    return jnp.mean(draws), draws

  (_, draws), grads = jax.value_and_grad(batch_mean, has_aux=True)(dist)
  return np.asarray(draws), [np.asarray(g) for g in grads.params]


@SETTINGS
@given(alpha=log_uniform(1e-2, 1e2), scale=log_uniform(1e-2, 1e2),
       family=st.sampled_from([Lomax, Weibull]))
def test_positive_families_rsample_log_density_and_gradients_are_finite(alpha, scale, family):
  dist = family(alpha, scale)
  draws, grads = _draws_and_grads(pvj.rsample_log, dist)
  assert np.isfinite(draws).all() and all(np.isfinite(g) for g in grads)
  assert np.isfinite(pvj.log_prob_log(dist, draws)).all()
  density_grads = jax.grad(lambda d: jnp.mean(pvj.log_prob_log(d, draws)))(dist)
  assert all(np.isfinite(g) for g in density_grads.params)


@SETTINGS
@given(df=log_uniform(0.3, 1e2), loc=st.floats(-1e2, 1e2), scale=log_uniform(1e-2, 1e2))
def test_student_t_rsample_density_and_gradients_are_finite_for_df_from_0_3(df, loc, scale):
  # P(|T| > 3.4e38 / scale) <= 1e-11 per draw here (module docstring): no draw overflows.
  dist = StudentT(df, loc, scale)
  draws, grads = _draws_and_grads(pvj.rsample, dist)
  assert np.isfinite(draws).all() and all(np.isfinite(g) for g in grads)
  assert np.isfinite(pvj.log_prob(dist, draws)).all()
  density_grads = jax.grad(lambda d: jnp.mean(pvj.log_prob(d, draws)))(dist)
  assert all(np.isfinite(g) for g in density_grads.params)


def test_student_t_draws_overflow_below_that_range_at_the_predicted_rate_and_never_nan():
  dist = StudentT(0.02, 0.0, 1.0)
  z = pvj.rsample(KEY, dist, (DRAWS,))
  rate = float(jnp.mean(jnp.isinf(z)))
  predicted = 2 * stats.t(0.02).sf(np.finfo(np.float32).max)
  stderr = np.sqrt(predicted * (1 - predicted) / z.size)
  assert abs(rate - predicted) < 4 * stderr, (rate, predicted)
  assert not np.isnan(z).any()
  log_q = np.asarray(pvj.log_prob(dist, z))
  assert not np.isnan(log_q).any() and (log_q[np.isinf(z)] == -np.inf).all()


@SETTINGS
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
