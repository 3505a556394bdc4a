"""The t3VAE objective (``gamma_power``) against the divergence's definition, its limit and
independent moments."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from pareto_vae_jax import gamma_power as gp
from pareto_vae_jax.distributions import multivariate_t


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


def _gaussian_kl(loc, scale):
  return 0.5 * np.sum(loc**2 + scale**2 - 1 - 2 * np.log(scale), -1)


def test_the_regularizer_tends_to_the_gaussian_kl_as_nu_grows(x64):
  loc = np.array([[0.3, -1.2], [2.0, 0.1]])
  scale = np.array([[0.5, 1.3], [0.2, 0.9]])
  kl = _gaussian_kl(loc, scale)
  errors = []
  for nu in (1e2, 1e3, 1e4, 1e5):
    r = np.asarray(gp.regularizer(jnp.asarray(loc), jnp.asarray(scale), nu, data_dim=3, sigma=0.8))
    errors.append(np.max(np.abs(r - kl)))
  # The expansion in 1 / nu: each tenfold nu cuts the gap about tenfold.
  assert errors[-1] < 1e-3 * max(1.0, np.max(kl))
  for before, after in zip(errors, errors[1:]):
    assert after < 0.2 * before


def test_gamma_and_the_encoder_follow_t3vae():
  assert gp.gamma(5.0, 784, 16) == pytest.approx(-2 / 805)
  q = gp.encoder(jnp.zeros((4, 3)), jnp.full((4, 3), 2.0), 5.0, data_dim=10)
  np.testing.assert_allclose(q.df, 15.0)
  np.testing.assert_allclose(q.scale, 2.0 * math.sqrt(5 / 15), rtol=1e-6)
  with pytest.raises(ValueError, match="nu > 2"):
    gp.encoder(jnp.zeros((1, 3)), jnp.ones((1, 3)), 2.0, data_dim=10)


def test_encoder_second_moment_matches_monte_carlo():
  # E_q |z|^2 = |loc|^2 + nu / (nu + n - 2) |s|^2, the first two terms of R.
  nu, n = 6.0, 4
  loc, s = jnp.array([0.5, -1.0, 2.0]), jnp.array([0.3, 1.1, 0.7])
  q = gp.encoder(loc, s, nu, n)
  z = multivariate_t.rsample(jax.random.key(0), q, (400_000,))
  sq = np.asarray(jnp.sum(jnp.square(z), -1), np.float64)
  expected = float(jnp.sum(loc**2) + nu / (nu + n - 2) * jnp.sum(s**2))
  # nu + n = 10 degrees of freedom: |z|^2 has a finite variance, so the mean's s.e. is valid.
  assert abs(sq.mean() - expected) < 5 * sq.std() / math.sqrt(sq.size)


@pytest.mark.parametrize("m", [1, 2])
def test_the_encoders_power_integral_matches_quadrature(m):
  nu, n = 5.0, 3
  g = gp.gamma(nu, n, m)
  s = np.array([0.7, 1.6])[:m]
  scale = s * math.sqrt(nu / (nu + n))
  df = nu + n
  if m == 1:
    f = lambda z: stats.t.pdf(z, df, scale=scale[0])**(1 + g)
    numeric = integrate.quad(f, -np.inf, np.inf)[0]
  else:
    dist = stats.multivariate_t(np.zeros(2), np.diag(scale**2), df=df)
    f = lambda y, x: dist.pdf([x, y])**(1 + g)
    numeric = integrate.dblquad(f, -np.inf, np.inf, -np.inf, np.inf, epsabs=1e-10)[0]
  closed = math.exp(gp.log_encoder_power_integral(nu, n, m)) * np.prod(scale**2)**(-g / 2)
  assert numeric == pytest.approx(closed, rel=1e-6)


def test_the_loss_is_the_gamma_power_divergence_up_to_scale_and_a_constant(x64):
  """1-D data, 1-D latent: D_g(q || p) by quadrature of its definition, against the loss.

  p_data = N(0.3, 0.8^2); encoder mean a x + b, scale s; decoder mean c z + e; the model's
  power-form joint with nu = 4, sigma = 0.7. With the data's power integral in ``C``
  (``entropy_coefficient``), D_g / (2 A) - E[loss] must be one constant for every parameter set.
  """
  nu, n, m, sigma = 4.0, 1, 1, 0.7
  g = gp.gamma(nu, n, m)
  mu_x, sd_x = 0.3, 0.8
  p_data = _normal_pdf(mu_x, sd_x)
  log_k = (math.lgamma(
      (nu + 2) / 2) - math.lgamma(nu / 2) - math.log(nu * math.pi) - math.log(sigma))
  log_data_power = -g / 2 * math.log(2 * math.pi * sd_x**2) - 0.5 * math.log(1 + g)
  c_exact = gp.entropy_coefficient(nu, n, m, sigma, log_data_power)
  log_j = gp.log_joint_power_integral(nu, n, m, sigma)
  a_const = (nu + n + m) / (2 * nu) * math.exp(-g / (1 + g) * log_j)
  lo, hi = mu_x - 12 * sd_x, mu_x + 12 * sd_x

  def divergence_and_loss(a, b, s, c, e):
    df, scale = nu + n, s * math.sqrt(nu / (nu + n))
    t_norm = math.exp(
        math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)) / scale
    q_z = lambda z, x: t_norm * (1 + ((z - a * x - b) / scale)**2 / df)**(-(df + 1) / 2)
    for z, x in [(0.0, 0.0), (-1.3, 0.7), (4.0, -2.0)]:  # plain arithmetic, as _normal_pdf
      assert q_z(z, x) == pytest.approx(stats.t.pdf(z, df, loc=a * x + b, scale=scale), rel=1e-12)
    p = lambda z, x: math.exp(log_k) * (1 + (z**2 +
                                             (x - c * z - e)**2 / sigma**2) / nu)**(-(nu + 2) / 2)
    inner = lambda f, x: integrate.quad(
        lambda z: f(z, x), -np.inf, np.inf, epsabs=1e-12, epsrel=1e-10, limit=200)[0]
    outer = lambda f: integrate.quad(
        lambda x: inner(f, x), lo, hi, epsabs=1e-12, epsrel=1e-10, limit=200)[0]
    i_qp = outer(lambda z, x: p_data(x) * q_z(z, x) * p(z, x)**g)
    i_pp = integrate.dblquad(lambda z, x: p(z, x)**(1 + g),
                             -np.inf,
                             np.inf,
                             -np.inf,
                             np.inf,
                             epsabs=1e-11)[0]
    i_qq = outer(lambda z, x: (p_data(x) * q_z(z, x))**(1 + g))
    # The joint's power integral has the closed form the loss uses.
    assert i_pp == pytest.approx(math.exp((1 + g) * log_k + log_j), rel=1e-6)
    d = -(1 / g) * i_qp / i_pp**(g / (1 + g)) + (1 / g) * i_qq**(1 / (1 + g))

    # The loss: E_x [ E_z |x - c z - e|^2 / (2 sigma^2) + R(a x + b, s) ], in closed form in z.
    var_z = nu / (nu + n - 2) * s**2
    recon = lambda x: ((x - c * (a * x + b) - e)**2 + c**2 * var_z) / (2 * sigma**2)
    reg = lambda x: float(
        gp.regularizer(jnp.array([a * x + b]), jnp.array([s]), nu, n, sigma, (c_exact, 0.0)))
    loss = integrate.quad(lambda x: p_data(x) * (recon(x) + reg(x)), lo, hi, epsabs=1e-12)[0]
    return d, loss

  offsets = []
  for params in [(0.5, 0.1, 0.6, 1.2, -0.2), (1.1, -0.5, 0.3, -0.8, 0.0)]:
    d, loss = divergence_and_loss(*params)
    assert d > 0
    offsets.append(d / (2 * a_const) - loss)
  assert max(offsets) - min(offsets) < 1e-6 * max(abs(o) for o in offsets) + 1e-7


# ------------------------------------------------------------------------------------------------
# The heavy-tailed decoders and the command line.


def _spec(**overrides):
  import tiny
  from pareto_vae_jax import vae
  config = tiny.config(**{"latent": "gaussian", "conditional": False, **overrides})
  return vae.VAESpec.from_config(config, input_shape=(3, 2), num_classes=0)


def test_student_t_likelihood_is_scipys_multivariate_t_over_the_flattened_input():
  from pareto_vae_jax import vae
  spec = _spec(likelihood="student_t", gaussian_scale=0.4, decoder_df=3.5)
  rng = np.random.default_rng(0)
  out, x = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
  got = vae.reconstruction_log_likelihood(spec, jnp.asarray(out), jnp.asarray(x))
  want = [
      stats.multivariate_t(out[i].ravel(), 0.16 * np.eye(6), df=3.5).logpdf(x[i].ravel())
      for i in range(4)
  ]
  np.testing.assert_allclose(got, want, rtol=1e-5)


def test_symmetric_pareto_likelihood_matches_its_l1_density_and_integrates_to_one_in_1d():
  from pareto_vae_jax import vae
  spec = _spec(likelihood="symmetric_pareto", gaussian_scale=0.5, decoder_df=2.5)
  rng = np.random.default_rng(1)
  out, x = rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 3, 2))
  got = vae.reconstruction_log_likelihood(spec, jnp.asarray(out), jnp.asarray(x))
  nu, d, s = 2.5, 6, 0.5
  l1 = np.abs((x - out) / s).reshape(4, -1).sum(-1)
  want = (math.lgamma(nu + d) - math.lgamma(nu) - d * math.log(2 * nu) - d * math.log(s) -
          (nu + d) * np.log1p(l1 / nu))
  np.testing.assert_allclose(got, want, rtol=1e-5)
  import tiny
  spec1 = vae.VAESpec.from_config(tiny.config(latent="gaussian",
                                              conditional=False,
                                              likelihood="symmetric_pareto",
                                              gaussian_scale=0.5,
                                              decoder_df=2.5),
                                  input_shape=(1,),
                                  num_classes=0)
  density = lambda v: math.exp(
      float(vae.reconstruction_log_likelihood(spec1, jnp.zeros((1, 1)), jnp.full((1, 1), v))[0]))
  assert integrate.quad(density, -np.inf, np.inf)[0] == pytest.approx(1.0, rel=1e-5)


def test_a_multivariate_t_latent_has_its_own_t_prior_with_the_configured_df():
  spec = _spec(latent="multivariate_t", latent_df=7.0, likelihood="gaussian")
  params = spec.init(jax.random.key(0))
  from pareto_vae_jax import vae
  p = vae.prior(spec, params, None, 3)
  assert isinstance(p, multivariate_t.MultivariateT)
  np.testing.assert_allclose(p.df, 7.0)
  q = vae.encode(spec, params, jnp.zeros((3, 3, 2)))
  np.testing.assert_allclose(q.df, 7.0)


@pytest.mark.parametrize("flags, message", [
    (["--latent=gaussian"], "--latent=multivariate_t or multivariate_symmetric_pareto"),
    (["--latent=multivariate_t", "--config.likelihood=bernoulli"], "likelihood=gaussian"),
    (["--latent=multivariate_t", "--config.likelihood=gaussian", "--config.latent_df=2.0"
     ], "latent_df above 2"),
    (["--latent=multivariate_symmetric_pareto", "--config.likelihood=student_t"
     ], "likelihood=laplace or gaussian"),
])
def test_gamma_power_refuses_a_model_it_was_not_derived_for(tmp_path, flags, message):
  import subprocess
  import sys
  proc = subprocess.run([
      sys.executable, "-m", "pareto_vae_jax.main", "--objective=gamma_power", "--noconditional",
      "--dataset=synthetic_lognormal", f"--workdir={tmp_path / 'run'}", *flags
  ],
                        capture_output=True,
                        text=True,
                        timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert message in proc.stderr and "error:" in proc.stderr
  assert not (tmp_path / "run").exists()  # nothing written


@pytest.mark.parametrize("latent, likelihood", [("multivariate_t", "gaussian"),
                                                ("multivariate_symmetric_pareto", "laplace")])
def test_gamma_power_trains_from_the_command_line(tmp_path, latent, likelihood):
  """t3VAE and ParetoVAE as a user runs them: ``python -m pareto_vae_jax.main --latent=...
  --objective=gamma_power``, two epochs on synthetic data, every output written."""
  import json
  import subprocess
  import sys
  import tiny
  workdir = tmp_path / "run"
  proc = subprocess.run([
      sys.executable, "-m", "pareto_vae_jax.main", f"--latent={latent}", "--objective=gamma_power",
      "--noconditional", "--dataset=synthetic_lognormal", f"--workdir={workdir}", *tiny.cli_flags(
          likelihood=likelihood, batch_size=256, eval_batch_size=1000, decoder_input="z")
  ],
                        capture_output=True,
                        text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  train_lines = [l for l in lines if l["split"] == "train"]
  assert [l["epoch"] for l in train_lines] == [1, 2]
  assert all(math.isfinite(l["loss"]) for l in train_lines)
  metrics = json.loads((workdir / "test_metrics.json").read_text())
  assert metrics["finished"] and metrics["config"]["objective"] == "gamma_power"
  assert metrics["config"]["likelihood"] == likelihood and math.isfinite(metrics["elbo"])


@pytest.mark.parametrize("latent, likelihood", [("multivariate_t", "gaussian"),
                                                ("multivariate_symmetric_pareto", "laplace"),
                                                ("multivariate_symmetric_pareto", "gaussian")])
def test_gamma_power_trains_from_the_python_api_and_lowers_its_loss(tmp_path, monkeypatch, latent,
                                                                    likelihood):
  import tiny
  from pareto_vae_jax import train
  ds = tiny.small_dataset("synthetic_lognormal", 512, 128)
  tiny.patch_dataset(monkeypatch, ds)
  config = tiny.config(latent=latent,
                       objective="gamma_power",
                       likelihood=likelihood,
                       conditional=False,
                       num_epochs=3,
                       latent_df=5.0,
                       decoder_input="z")
  train.train_and_evaluate(config, str(tmp_path))
  import json
  lines = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
  losses = [l["loss"] for l in lines if "loss" in l and l.get("split", "train") == "train"]
  assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
  metrics = json.loads((tmp_path / "test_metrics.json").read_text())
  assert np.isfinite(metrics["elbo"])


# ------------------------------------------------------------------------------------------------
# The symmetric Pareto version (ParetoVAE's objective as derived in gamma_power.py).


def _laplace_kl(loc, scale):
  return np.sum(np.abs(loc) + scale * np.exp(-np.abs(loc) / scale) - np.log(scale) - 1, -1)


@pytest.mark.parametrize("likelihood", ["laplace", "gaussian"])
def test_the_sympareto_regularizer_tends_to_the_laplace_kl_as_nu_grows(x64, likelihood):
  loc = np.array([[0.3, -1.2], [2.0, 0.1]])
  scale = np.array([[0.5, 1.3], [0.2, 0.9]])
  kl = _laplace_kl(loc, scale)
  errors = []
  for nu in (1e2, 1e3, 1e4, 1e5):
    r = np.asarray(
        gp.sympareto_regularizer(jnp.asarray(loc),
                                 jnp.asarray(scale),
                                 nu,
                                 3,
                                 0.8,
                                 likelihood=likelihood))
    errors.append(np.max(np.abs(r - kl)))
  assert errors[-1] < 1e-3 * max(1.0, np.max(kl))
  for before, after in zip(errors, errors[1:]):
    assert after < 0.2 * before


def test_sympareto_absolute_mean_matches_monte_carlo():
  from pareto_vae_jax.distributions import multivariate_symmetric_pareto as msp
  loc, scale, df = jnp.array([0.0, 0.7, -2.5]), jnp.array([1.0, 0.4, 1.5]), 6.0
  z = msp.rsample(jax.random.key(1), msp.MultivariateSymmetricPareto(loc, scale, df), (400_000,))
  a = np.abs(np.asarray(z, np.float64))
  want = np.asarray(gp.sympareto_abs_mean(loc, scale, df))
  assert np.all(np.abs(a.mean(0) - want) < 5 * a.std(0) / math.sqrt(a.shape[0]))


def _assert_one_offset(divergence_and_loss, a_const, param_sets, rtol=1e-5, atol=1e-6):
  """D_g / A - E[loss] is positive-divergence and one constant over the parameter sets."""
  offsets = []
  for params in param_sets:
    d, loss = divergence_and_loss(*params)
    assert d > 0
    offsets.append(d / a_const - loss)
  assert max(offsets) - min(offsets) < rtol * max(abs(o) for o in offsets) + atol


def _normal_pdf(mu: float, sd: float):
  """N(mu, sd^2)'s density in plain arithmetic (scipy's per-call overhead is most of a nested
  quadrature's time), checked against scipy at a few points."""
  pdf = lambda x: math.exp(-0.5 * ((x - mu) / sd)**2) / (sd * math.sqrt(2 * math.pi))
  for x in (mu - 3 * sd, mu, mu + 0.7 * sd):
    assert pdf(x) == pytest.approx(stats.norm.pdf(x, mu, sd), rel=1e-12)
  return pdf


def _piecewise_quad(f, kinks):
  edges = [-np.inf, *sorted(kinks), np.inf]
  return sum(
      integrate.quad(f, lo, hi, epsabs=1e-12, epsrel=1e-10, limit=200)[0]
      for lo, hi in zip(edges, edges[1:]))


def test_the_sympareto_loss_is_the_gamma_power_divergence_up_to_scale_and_a_constant(x64):
  """As the t3VAE test, with the l1 power-form joint, the symPareto encoder and the Laplace
  reconstruction: D_g / A1 - E[loss] is one constant for every parameter set."""
  nu, n, m, sigma = 3.0, 1, 1, 0.7
  family = "multivariate_symmetric_pareto"
  g = gp.gamma(nu, n, m, family)
  mu_x, sd_x = 0.3, 0.8
  p_data = _normal_pdf(mu_x, sd_x)
  log_k = math.lgamma(nu + 2) - math.lgamma(nu) - 2 * math.log(2 * nu) - math.log(sigma)
  log_data_power = -g / 2 * math.log(2 * math.pi * sd_x**2) - 0.5 * math.log(1 + g)
  c_exact = gp.sympareto_entropy_coefficient(nu, n, m, sigma, log_data_power)
  log_j = gp.log_sympareto_joint_power_integral(nu, n, m, sigma)
  a_const = (nu + n + m) / nu * math.exp(-g / (1 + g) * log_j)
  lo, hi = mu_x - 12 * sd_x, mu_x + 12 * sd_x
  df = nu + n

  def divergence_and_loss(a, b, s, c, e):
    width = s * nu / df
    q_z = lambda z, x: 0.5 / width * (1 + abs(z - a * x - b) / (width * df))**(-(df + 1))
    p = lambda z, x: math.exp(log_k) * (1 + (abs(z) + abs(x - c * z - e) / sigma) / nu)**(-(nu + 2))
    kinks = lambda x: [0.0, (x - e) / c, a * x + b]
    inner = lambda f, x: _piecewise_quad(lambda z: f(z, x), kinks(x))
    outer = lambda f: integrate.quad(
        lambda x: inner(f, x), lo, hi, epsabs=1e-12, epsrel=1e-10, limit=200)[0]
    i_qp = outer(lambda z, x: p_data(x) * q_z(z, x) * p(z, x)**g)
    i_pp = integrate.quad(lambda x: _piecewise_quad(lambda z: p(z, x)**(1 + g), [0.0, (x - e) / c]),
                          -np.inf,
                          np.inf,
                          epsabs=1e-11,
                          limit=400)[0]
    i_qq = outer(lambda z, x: (p_data(x) * q_z(z, x))**(1 + g))
    assert i_pp == pytest.approx(math.exp((1 + g) * log_k + log_j), rel=1e-5)
    d = -(1 / g) * i_qp / i_pp**(g / (1 + g)) + (1 / g) * i_qq**(1 / (1 + g))

    recon = lambda x: float(gp.sympareto_abs_mean(x - e - c * (a * x + b),
                                                  abs(c) * width, df)) / sigma
    reg = lambda x: float(
        gp.sympareto_regularizer(jnp.array([a * x + b]), jnp.array([s]), nu, n, sigma,
                                 (c_exact, 0.0)))
    loss = integrate.quad(lambda x: p_data(x) * (recon(x) + reg(x)), lo, hi, epsabs=1e-12)[0]
    return d, loss

  _assert_one_offset(divergence_and_loss, a_const, [(0.5, 0.1, 0.6, 1.2, -0.2),
                                                    (-0.3, 0.8, 1.4, 0.4, 0.5)])


# ------------------------------------------------------------------------------------------------
# ParetoVAE's t decoder: the mixed joint [1 + (|z|_1 + |x - mu|^2 / (2 sigma^2)) / nu]^-(nu+m+n/2).


def _mixed_log_k(nu, n, m, sigma):
  return (math.lgamma(nu + m + n / 2) - math.lgamma(nu) - m * math.log(2 * nu) -
          n / 2 * math.log(2 * math.pi * nu) - n * math.log(sigma))


def test_the_mixed_joint_has_the_sympareto_prior_and_a_t_decoder():
  """1-D data and latent: the z-marginal of the t decoder's joint is symPareto(0, 1, nu) and
  p(x | z) is scipy's t with 2 (nu + m) degrees of freedom and scale^2 nu sigma^2 (1 + |z| / nu)
  / (nu + m), as the module docstring states."""
  nu, sigma, mean = 3.5, 0.6, lambda z: 0.8 * z - 0.3
  k = nu + 1 + 0.5
  joint = lambda x, z: math.exp(_mixed_log_k(nu, 1, 1, sigma)) * (1 + (abs(z) + (x - mean(z))**2 /
                                                                       (2 * sigma**2)) / nu)**(-k)
  for z in (0.0, 0.7, -3.0):
    marginal = integrate.quad(lambda x: joint(x, z), -np.inf, np.inf, epsabs=1e-13)[0]
    prior = (nu / (2 * nu)) * (1 + abs(z) / nu)**(-(nu + 1))  # symPareto_1(0, 1, nu)
    assert marginal == pytest.approx(prior, rel=1e-8)
    scale = math.sqrt(nu * sigma**2 * (1 + abs(z) / nu) / (nu + 1))
    for x in (-1.0, 0.2, 4.0):
      want = stats.t.pdf(x, 2 * (nu + 1), loc=mean(z), scale=scale)
      assert joint(x, z) / marginal == pytest.approx(want, rel=1e-8)


def test_the_t_decoder_sympareto_loss_is_the_gamma_power_divergence_up_to_a_constant(x64):
  """As the symPareto test, with the mixed joint, its encoder symPareto(mu_x, nu / (nu + 1/2) s,
  nu + 1/2) and the Gaussian reconstruction: D_g / A - E[loss] is one constant."""
  nu, n, m, sigma = 3.0, 1, 1, 0.7
  family, likelihood = "multivariate_symmetric_pareto", "gaussian"
  g = gp.gamma(nu, n, m, family, likelihood)
  assert g == pytest.approx(-1 / (nu + m + n / 2))
  mu_x, sd_x = 0.3, 0.8
  p_data = _normal_pdf(mu_x, sd_x)
  log_k = _mixed_log_k(nu, n, m, sigma)
  log_data_power = -g / 2 * math.log(2 * math.pi * sd_x**2) - 0.5 * math.log(1 + g)
  c_exact = gp.sympareto_entropy_coefficient(nu, n, m, sigma, log_data_power, likelihood)
  log_j = gp.log_sympareto_joint_power_integral(nu, n, m, sigma, likelihood)
  a_const = -1 / g / nu * math.exp(-g / (1 + g) * log_j)
  lo, hi = mu_x - 12 * sd_x, mu_x + 12 * sd_x
  df = nu + n / 2

  def divergence_and_loss(a, b, s, c, e):
    q = gp.sympareto_encoder(jnp.array([0.0]), jnp.array([s]), nu, n, likelihood)
    width = float(q.scale[0])
    assert float(q.df) == df and width == pytest.approx(s * nu / df)
    q_z = lambda z, x: 0.5 / width * (1 + abs(z - a * x - b) / (width * df))**(-(df + 1))
    p = lambda z, x: math.exp(log_k) * (1 + (abs(z) + (x - c * z - e)**2 /
                                             (2 * sigma**2)) / nu)**(-(nu + m + n / 2))
    kinks = lambda x: [0.0, a * x + b, (x - e) / c]  # |z|, |z - mu_x| and the ridge of p
    inner = lambda f, x: _piecewise_quad(lambda z: f(z, x), kinks(x))
    outer = lambda f: integrate.quad(
        lambda x: inner(f, x), lo, hi, epsabs=1e-12, epsrel=1e-10, limit=200)[0]
    i_qp = outer(lambda z, x: p_data(x) * q_z(z, x) * p(z, x)**g)
    # x innermost, centred on the ridge x = c z + e, so that quad sees its peak.
    ridge = lambda z: integrate.quad(
        lambda u: p(z, c * z + e + u)**(1 + g), -np.inf, np.inf, epsabs=1e-14, epsrel=1e-12)[0]
    i_pp = _piecewise_quad(ridge, [0.0])
    i_qq = outer(lambda z, x: (p_data(x) * q_z(z, x))**(1 + g))
    assert i_pp == pytest.approx(math.exp((1 + g) * log_k + log_j), rel=1e-5)
    d = -(1 / g) * i_qp / i_pp**(g / (1 + g)) + (1 / g) * i_qq**(1 / (1 + g))

    recon = lambda x: inner(lambda z, x: q_z(z, x) * (x - c * z - e)**2 / (2 * sigma**2), x)
    reg = lambda x: float(
        gp.sympareto_regularizer(jnp.array([a * x + b]),
                                 jnp.array([s]),
                                 nu,
                                 n,
                                 sigma, (c_exact, 0.0),
                                 likelihood=likelihood))
    loss = integrate.quad(lambda x: p_data(x) * (recon(x) + reg(x)), lo, hi, epsabs=1e-12)[0]
    return d, loss

  _assert_one_offset(divergence_and_loss, a_const, [(0.5, 0.1, 0.6, 1.2, -0.2),
                                                    (-0.3, 0.8, 1.4, 0.4, 0.5)])


@pytest.mark.parametrize("family, likelihood", [("multivariate_t", "gaussian"),
                                                ("multivariate_symmetric_pareto", "laplace"),
                                                ("multivariate_symmetric_pareto", "gaussian")])
def test_the_data_free_constants_make_the_regularizer_vanish_at_its_minimum(
    x64, family, likelihood):
  """t3VAE's choice of (C, tau), and ours after it: R >= 0, 0 at loc = 0 and the scale s*, which
  tends to 1 as nu grows (a numerical minimization over a grid, not the closed form)."""
  n, m, sigma = 20, 3, 0.5
  stars = []
  for nu in (4.0, 40.0, 4000.0):
    grid = jnp.exp(jnp.linspace(-3.0, 3.0, 6001))
    scale = jnp.broadcast_to(grid[:, None], (grid.size, m))
    r = gp.loss_regularizer(family, jnp.zeros_like(scale), scale, nu, n, sigma, likelihood)
    best = int(jnp.argmin(r))
    assert abs(float(r[best])) < 1e-6 and float(jnp.min(r)) > -1e-6
    stars.append(float(grid[best]))
    _, tau = (gp.t3vae_constants(nu, n, m, sigma) if family == "multivariate_t" else
              gp.sympareto_constants(nu, n, m, sigma, likelihood))
    s_star = math.sqrt(tau) if family == "multivariate_t" else tau
    assert stars[-1] == pytest.approx(s_star, rel=2e-3)
    moved = gp.loss_regularizer(family, jnp.full((1, m), 0.3), jnp.full((1, m), s_star), nu, n,
                                sigma, likelihood)
    assert float(moved[0]) > 0
  assert abs(stars[-1] - 1) < abs(stars[0] - 1) and abs(stars[-1] - 1) < 0.01
