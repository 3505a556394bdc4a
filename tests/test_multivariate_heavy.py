"""The heavy-tailed joint latents: multivariate t (t3VAE) and multivariate symmetric Pareto
(ParetoVAE's symPareto, in the l1 form derived in its module docstring).

Densities against scipy (the t) and quadrature and closed forms (the symPareto); draws of both
paths (``rsample`` with a key, ``transform`` from the trainer's D normals, whose mixing variable
is keyed by a hash of the noise) against the laws of each coordinate and of the radius;
moments with Monte Carlo standard errors; pathwise gradients against derivatives of known
expectations; and one training epoch of each.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

import tiny
from pareto_vae_jax import distributions as D
from pareto_vae_jax import train
from pareto_vae_jax.distributions import latent
from pareto_vae_jax.distributions import multivariate_symmetric_pareto as msp
from pareto_vae_jax.distributions import multivariate_t as mvt

LOC = np.array([0.5, -1.0, 2.0])
SCALE = np.array([0.3, 1.0, 2.0])
N = 20_000
KS_P = 1e-3


def _t(df, loc=LOC, scale=SCALE):
  return D.MultivariateT(jnp.asarray(loc, jnp.float32), jnp.asarray(scale, jnp.float32), df)


def _sp(df, loc=LOC, scale=SCALE):
  return D.MultivariateSymmetricPareto(jnp.asarray(loc, jnp.float32),
                                       jnp.asarray(scale, jnp.float32), df)


_JIT = {
    (m, path):
        jax.jit(m.transform if path == "transform" else m.rsample_and_log_prob,
                static_argnums=() if path == "transform" else (2,)) for m in (mvt, msp)
    for path in ("rsample", "transform")
}


def _draws(module, dist, path, n=N, seed=0):
  """n draws [n, D] and their log-densities [n] by ``rsample`` or by ``transform``; log q of a
  draw is checked against the density at it."""
  key = jax.random.key(seed)
  if path == "rsample":
    z, log_q = _JIT[module, path](key, dist, (n,))
  else:
    z, log_q = _JIT[module, path](dist, jax.random.normal(key, (n,) + dist.event_shape))
  np.testing.assert_allclose(log_q[:500], module.log_prob(dist, z[:500]), rtol=1e-5, atol=1e-5)
  return z, log_q


def _sym_pareto_1d_pdf(x, loc, scale, df):
  # My derivation's D = 1 closed form: (1 / (2 sigma)) (1 + |u| / nu)^-(nu + 1).
  return 0.5 / scale * (1 + np.abs((x - loc) / scale) / df)**-(df + 1)


def _sym_pareto_1d_cdf(x, loc, scale, df):
  # Lomax(nu, nu sigma) reflected about loc: P(|z - loc| > r) = (1 + r / (nu sigma))^-nu.
  tail = 0.5 * (1 + np.abs(x - loc) / (df * scale))**-df
  return np.where(x < loc, tail, 1 - tail)


# ------------------------------------------------------------------------------------------------
# Densities.


def test_multivariate_t_log_prob_matches_scipy_with_a_diagonal_shape_matrix():
  rng = np.random.default_rng(0)
  for df in (0.7, 2.5, 30.0):
    dist = _t(df)
    law = stats.multivariate_t(LOC, np.diag(SCALE**2), df=df)
    z = (LOC + SCALE * rng.standard_t(df, (50, 3)) * 3).astype(np.float32)
    np.testing.assert_allclose(mvt.log_prob(dist, z), law.logpdf(z), rtol=2e-6, atol=2e-5)
  # A batch of distributions with their own df, and a far point where |u|^2 overflows float32.
  dfs = np.array([1.0, 4.0])
  batch = D.MultivariateT(jnp.zeros((2, 3)), jnp.ones((2, 3)), jnp.asarray(dfs, jnp.float32))
  z = np.array([[0.3, -0.2, 1.0], [1e20, 0.0, -1e20]], np.float32)
  want = [
      stats.multivariate_t(np.zeros(3), np.eye(3), df=f).logpdf(z[i].astype(np.float64))
      for i, f in enumerate(dfs)
  ]
  np.testing.assert_allclose(mvt.log_prob(batch, z), want, rtol=1e-5)
  assert mvt.log_prob(batch, z).shape == (2,)


def test_standard_priors_are_centred_unit_scale_members_of_each_family():
  for module, cls in ((mvt, D.MultivariateT), (msp, D.MultivariateSymmetricPareto)):
    prior = module.standard_prior((4, 3))
    assert type(prior) is cls and prior.batch_shape == (4,) and prior.event_shape == (3,)
    np.testing.assert_array_equal(prior.loc, 0.0)
    np.testing.assert_array_equal(prior.scale, 1.0)
    np.testing.assert_array_equal(prior.df, module.DEFAULT_DF)


def test_sym_pareto_in_one_dimension_is_the_derived_closed_form_and_the_reflected_lomax():
  loc, scale, df = 0.4, 0.7, 2.5
  dist = _sp(df, [loc], [scale])
  x = np.linspace(-30, 30, 301).astype(np.float32)
  got = np.exp(msp.log_prob(dist, x[:, None]))
  np.testing.assert_allclose(got, _sym_pareto_1d_pdf(x, loc, scale, df), rtol=2e-6)
  lomax = 0.5 * stats.lomax(df, scale=df * scale).pdf(np.abs(x - loc))
  np.testing.assert_allclose(got, lomax, rtol=2e-6)
  # ... and the factorized SymmetricPareto(loc, alpha = nu, scale = nu sigma).
  factorized = D.SymmetricPareto(**{"loc": loc, "alpha": df, "scale": df * scale})
  np.testing.assert_allclose(msp.log_prob(dist, x[:, None]),
                             D.log_prob(factorized, x),
                             rtol=2e-6,
                             atol=2e-6)


def _density(dist, module):
  fn = jax.jit(lambda z: jnp.exp(module.log_prob(dist, z)))
  return lambda *z: float(fn(jnp.asarray(z, jnp.float32)))


def test_sym_pareto_density_integrates_to_one_in_one_and_two_dimensions():
  # Over each orthant about loc, where the density is smooth.
  loc1, loc2, scale2 = 0.3, np.array([0.3, -0.2]), np.array([0.5, 2.0])
  p1 = _density(_sp(1.5, [loc1], [0.8]), msp)
  total1 = (integrate.quad(p1, -np.inf, loc1, epsabs=1e-9)[0] +
            integrate.quad(p1, loc1, np.inf, epsabs=1e-9)[0])
  np.testing.assert_allclose(total1, 1.0, atol=1e-5)
  p2 = _density(_sp(3.0, loc2, scale2), msp)
  total2 = 0.0
  for sx in (-1, 1):
    for sy in (-1, 1):
      # Integrate in the offset from loc: (s_x a, s_y b), a, b >= 0.
      f = lambda b, a, sx=sx, sy=sy: p2(loc2[0] + sx * a, loc2[1] + sy * b)
      total2 += integrate.dblquad(f, 0, np.inf, 0, np.inf, epsabs=1e-7)[0]
  np.testing.assert_allclose(total2, 1.0, atol=2e-4)


# ------------------------------------------------------------------------------------------------
# Draws.


@pytest.mark.parametrize("path", ("rsample", "transform"))
def test_multivariate_t_draws_have_t_marginals_and_an_f_distributed_radius(path):
  df = 3.0
  z, _ = _draws(mvt, _t(df), path)
  z = np.asarray(z, np.float64)
  for i in range(3):
    assert stats.kstest(z[:, i], stats.t(df, LOC[i], SCALE[i]).cdf).pvalue > KS_P
  # |u|^2 / D ~ F(D, nu), with u = (z - loc) / scale.
  r2 = np.sum(((z - LOC) / SCALE)**2, -1) / 3
  assert stats.kstest(r2, stats.f(3, df).cdf).pvalue > KS_P


@pytest.mark.parametrize("path", ("rsample", "transform"))
def test_sym_pareto_draws_have_lomax_marginals_and_a_beta_prime_l1_radius(path):
  df = 2.5
  z, _ = _draws(msp, _sp(df), path, seed=1)
  z = np.asarray(z, np.float64)
  for i in range(3):
    cdf = lambda x, i=i: _sym_pareto_1d_cdf(x, LOC[i], SCALE[i], df)
    assert stats.kstest(z[:, i], cdf).pvalue > KS_P
  # |u|_1 / nu ~ BetaPrime(D, nu).
  r = np.sum(np.abs((z - LOC) / SCALE), -1)
  assert stats.kstest(r, stats.betaprime(3, df, scale=df).cdf).pvalue > KS_P
  np.testing.assert_allclose(msp.radius_log_prob(df, 3, r[:20]),
                             stats.betaprime(3, df, scale=df).logpdf(r[:20]),
                             rtol=1e-4,
                             atol=1e-4)


def test_transform_mixing_variable_is_fixed_by_the_noise_and_differs_between_rows():
  dist = _t(4.0)
  eps = jax.random.normal(jax.random.key(3), (5, 3))
  z1, _ = _JIT[mvt, "transform"](dist, eps)
  z2, _ = _JIT[mvt, "transform"](dist, eps)
  np.testing.assert_array_equal(z1, z2)
  # Same direction, different rows: their radii ratios are not the noise's.
  ratio = np.linalg.norm((np.asarray(z1) - LOC) / SCALE, axis=-1) / np.linalg.norm(eps, axis=-1)
  assert len(np.unique(np.round(ratio, 5))) == 5


@pytest.mark.parametrize("family", ("t", "sym_pareto"))
def test_sample_moments_match_the_closed_forms(family):
  df, n = 9.0, 50_000
  module, dist = (mvt, _t(df)) if family == "t" else (msp, _sp(df))
  factor = df / (df - 2) if family == "t" else 2 * df**2 / ((df - 1) * (df - 2))
  np.testing.assert_allclose(module.mean(dist), LOC, rtol=1e-7)
  np.testing.assert_allclose(module.variance(dist), SCALE**2 * factor, rtol=1e-6)
  np.testing.assert_allclose(module.covariance(dist), np.diag(SCALE**2 * factor), rtol=1e-6)
  z = np.asarray(_JIT[module, "rsample"](jax.random.key(4), dist, (n,))[0], np.float64)
  se_mean = z.std(0) / np.sqrt(n)
  assert np.all(np.abs(z.mean(0) - LOC) < 5 * se_mean), (z.mean(0), LOC, se_mean)
  sq = (z - LOC)**2
  se_var = sq.std(0) / np.sqrt(n)
  assert np.all(np.abs(sq.mean(0) - SCALE**2 * factor) < 5 * se_var)
  # Off-diagonal covariances vanish (the coordinates are uncorrelated, though dependent).
  c = np.cov(z.T)
  prod = (z[:, 0] - LOC[0]) * (z[:, 1] - LOC[1])
  assert abs(c[0, 1]) < 5 * prod.std() / np.sqrt(n)


def test_moments_follow_student_t_conventions_for_small_df():
  dfs = jnp.array([0.8, 1.5, 3.0])
  for module in (mvt, msp):
    cls = D.MultivariateT if module is mvt else D.MultivariateSymmetricPareto
    dist = cls(jnp.zeros((3, 2)), jnp.ones((3, 2)), dfs)
    m, v = np.asarray(module.mean(dist)), np.asarray(module.variance(dist))
    assert np.all(np.isinf(m[0])) and np.all(m[1:] == 0)
    assert np.all(np.isnan(v[0])) and np.all(np.isinf(v[1])) and np.all(np.isfinite(v[2]))


# ------------------------------------------------------------------------------------------------
# Pathwise gradients: d/d(loc, scale, df) of E[z_i^2] = loc_i^2 + scale_i^2 h(df).


def _h_t(df):
  return df / (df - 2)


def _h_sp(df):
  return 2 * df**2 / ((df - 1) * (df - 2))


@pytest.mark.parametrize("family", ("t", "sym_pareto"))
@pytest.mark.parametrize("path", ("rsample", "transform"))
def test_reparameterized_gradients_match_derivatives_of_the_second_moment(family, path):
  module, h = (mvt, _h_t) if family == "t" else (msp, _h_sp)
  cls = D.MultivariateT if family == "t" else D.MultivariateSymmetricPareto
  df, reps, n = 10.0, 8, 10_000

  def estimate(params, key):
    loc, scale, df = params
    dist = cls(loc, scale, df)
    if path == "rsample":
      z = module.rsample(key, dist, (n,))
    else:
      z = module.transform(dist, jax.random.normal(key, (n, 3)))[0]
    return jnp.mean(jnp.sum(z**2 * jnp.array([1.0, 0.5, 0.25]), -1))

  grad = jax.jit(jax.grad(estimate))
  params = (jnp.asarray(LOC, jnp.float32), jnp.asarray(SCALE, jnp.float32), jnp.float32(df))
  g = [grad(params, k) for k in jax.random.split(jax.random.key(5), reps)]
  w = np.array([1.0, 0.5, 0.25])
  dh = (h(df + 1e-4) - h(df - 1e-4)) / 2e-4
  want = (2 * w * LOC, 2 * w * SCALE * h(df), np.sum(w * SCALE**2) * dh)
  for i, name in enumerate(("loc", "scale", "df")):
    est = np.array([np.asarray(gi[i], np.float64) for gi in g])
    se = est.std(0, ddof=1) / np.sqrt(reps)
    err = np.abs(est.mean(0) - want[i])
    assert np.all(err < 5 * se + 1e-3 * np.abs(want[i])), (name, est.mean(0), want[i], se)


# ------------------------------------------------------------------------------------------------
# The trainer.


@pytest.mark.parametrize("latent", ("multivariate_t", "multivariate_symmetric_pareto"))
def test_one_epoch_of_training_finishes_with_finite_metrics(tmp_path, monkeypatch, latent):
  # --latent=<latent> --dataset=synthetic_lognormal --config.likelihood=gaussian
  # --config.num_epochs=1, in-process, on a subset of the data.
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 128))
  config = tiny.config(latent=latent, num_epochs=1, summary_every_epochs=0)
  results = train.train_and_evaluate(config, str(tmp_path))
  assert results["finished"]
  for name in ("elbo", "iwae", "kl", "recon"):
    assert np.isfinite(results[name]), (name, results)
  assert (tmp_path / "test_metrics.json").exists()


def test_the_kl_to_the_standard_prior_is_the_single_draw_estimate():
  for cls in (D.MultivariateT, D.MultivariateSymmetricPareto):
    assert latent.kl_method(cls, D.Gaussian) == "estimate_joint"
    assert latent.kl_method(cls, cls) == "estimate_joint"
