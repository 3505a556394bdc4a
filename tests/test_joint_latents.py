"""Joint latent families in the trainer: full-covariance Gaussian, planar flows and IAF.

Their draws come with a joint log-density (a flow's from its change of variables); the KL is
one number for the whole latent vector, closed form for the full-covariance Gaussian and a
single-sample Monte Carlo estimate for the flows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny
from pareto_vae_jax import distributions as D
from pareto_vae_jax import models, train
from pareto_vae_jax import vae
from pareto_vae_jax.distributions import joint
from test_evaluate import _exact_log_marginal

JOINT = ("full_cov_gaussian", "planar", "iaf")


def _mean_and_se(v):
  v = np.asarray(v, np.float64)
  return v.mean(), v.std() / np.sqrt(len(v))


def _linear_gaussian_model(latent: str, seed: int = 0, **overrides):
  """Linear encoder/decoder, N(0, I) prior, Gaussian likelihood (std 0.5): exact log p(x)."""
  ds = tiny.small_dataset("synthetic_lognormal", 256, 200)
  settings = dict(latent=latent, hidden=(), latent_dim=2, likelihood="gaussian",
                  gaussian_scale=0.5, conditional=False, seed=seed, flow_layers=2, iaf_steps=2,
                  iaf_hidden=8, iaf_context=4)
  config = tiny.config(**(settings | overrides))
  model = vae.VAESpec.from_config(config, ds)
  params = train.init_state(model, train.make_optimizer(config), config).params
  x = ((ds.test_x - ds.test_x.mean(0)) / ds.test_x.std(0)).astype(np.float32)
  batch = {"x": jnp.asarray(x), "y": jnp.asarray(ds.test_y), "index": jnp.arange(len(x))}
  return config, model, params, batch


@pytest.mark.parametrize("latent", JOINT)
def test_iwae_with_a_joint_posterior_is_a_bound_on_the_exact_log_likelihood(latent):
  # A wrong log q(z) (e.g. a log-determinant with the wrong sign) breaks these: the IWAE
  # estimate converges to log p(x) only if the weights p(x, z) / q(z) are right.
  config, model, params, batch = _linear_gaussian_model(latent)
  log_px = _exact_log_marginal(params, np.asarray(batch["x"]))
  key = jax.random.key(5)
  out = {k: jax.device_get(vae.make_eval_fn(model, k)(params, batch, key))
         for k in (1, 64, 1024)}
  diff, se = _mean_and_se(out[1]["iwae"] - out[1]["elbo"])  # k = 1 is the ELBO in expectation
  assert abs(diff) < 4 * se + 1e-6, (diff, se)
  for k in (1, 64, 1024):
    gap, se = _mean_and_se(log_px - out[k]["iwae"])
    assert gap > -4 * se, (k, gap, se)
  gap1, _ = _mean_and_se(log_px - out[1]["iwae"])
  gap_k, se_k = _mean_and_se(log_px - out[1024]["iwae"])
  assert gap_k < 0.25 * gap1 + 4 * se_k, (gap1, gap_k)


def test_full_covariance_kl_is_closed_form_and_the_draws_estimate_it_without_bias():
  config, model, params, batch = _linear_gaussian_model("full_cov_gaussian")
  key = jax.random.key(3)
  terms = vae.terms(model, params, batch, key)
  q = vae.encode(model, params, batch["x"], None)
  p = vae.prior(model, params, None, batch["x"].shape[0])
  assert isinstance(q, D.FullCovGaussian) and isinstance(p, D.Gaussian)
  # The trainer's per-dimension terms share the one closed-form KL equally.
  np.testing.assert_allclose(terms["kl_dim"].sum(-1), D.kl_full_cov_standard(q), rtol=1e-5)
  np.testing.assert_allclose(terms["kl_dim"][:, 0], terms["kl_dim"][:, 1], rtol=1e-6)
  # The Monte Carlo estimate log q(z) - log p(z) at the trainer's draws: unbiased.
  keys = jax.vmap(jax.random.fold_in, (None, 0))(key, batch["index"])
  z, _, log_q = vae.sample_and_log_q(keys, q, 2000)
  mc = log_q - vae.joint_log_prob(p, z, False)  # [k, B]
  mean, se = _mean_and_se(mc[:, 0])
  assert abs(mean - float(D.kl_full_cov_standard(q)[0])) < 4 * se


def test_full_covariance_learned_prior_uses_the_general_closed_form():
  config, model, params, batch = _linear_gaussian_model("full_cov_gaussian", prior="learned",
                                                        conditional=True)
  terms = vae.terms(model, params, batch, jax.random.key(0))
  y = batch["y"]
  q = vae.encode(model, params, batch["x"], y)
  p = vae.prior(model, params, y, len(y))
  assert isinstance(p, D.FullCovGaussian)
  np.testing.assert_allclose(terms["kl_dim"].sum(-1), D.kl_full_cov(q, p), rtol=1e-5)


@pytest.mark.parametrize("latent", ("planar", "iaf"))
def test_flow_kl_is_the_single_draw_estimate_at_the_decoded_draw(latent):
  config, model, params, batch = _linear_gaussian_model(latent)
  key = jax.random.key(4)
  terms = vae.terms(model, params, batch, key)
  q = vae.encode(model, params, batch["x"], None)
  keys = jax.vmap(jax.random.fold_in, (None, 0))(key, batch["index"])
  z, log_q = joint.sample_with_log_prob(keys, q)
  log_p = jax.scipy.stats.norm.logpdf(z).sum(-1)
  np.testing.assert_allclose(terms["kl_dim"].sum(-1), log_q - log_p, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("prior", ("learned", "mixture"))
@pytest.mark.parametrize("latent", JOINT)
def test_joint_families_train_with_learned_and_mixture_priors(tmp_path, latent, prior):
  config = tiny.config(latent=latent, prior=prior, conditional=prior == "learned",
                       num_epochs=1, prior_components=3, flow_layers=2, iaf_hidden=16,
                       iaf_context=4)
  results = train.train_and_evaluate(config, str(tmp_path))
  assert results["finished"]
  for name in ("elbo", "iwae", "kl", "recon"):
    assert np.isfinite(results[name]), (name, results)
  assert results["kl"] > 0
  assert (tmp_path / "test_metrics.json").exists()


@pytest.mark.parametrize("latent", JOINT)
def test_vamp_prior_and_free_bits_are_refused_for_joint_families(tmp_path, latent):
  with pytest.raises(ValueError, match="factorized posterior"):
    train.train_and_evaluate(tiny.config(latent=latent, prior="vamp"), str(tmp_path / "a"))
  with pytest.raises(ValueError, match="free_bits"):
    train.train_and_evaluate(tiny.config(latent=latent, free_bits=0.1), str(tmp_path / "b"))


def test_full_covariance_posterior_set_to_the_exact_posterior_makes_the_elbo_exact():
  # In the linear-Gaussian model the posterior is N(Sigma W (x - b) / s^2, Sigma) with
  # Sigma = (I + W W^T / s^2)^-1: a full-covariance Gaussian whose mean is linear in x. With
  # the encoder set to it, log p(x, z) - log q(z) = log p(x) for every draw: every IWAE
  # estimate equals the exact log-likelihood (a diagonal posterior cannot do this).
  config, model, params, batch = _linear_gaussian_model("full_cov_gaussian")
  s2 = 0.25
  w = np.array([[1.0, 0.8], [0.9, 1.0]])  # decoder x = z W + b: nearly collinear columns
  b = np.asarray(params["params"]["decoder"]["Dense_0"]["bias"], np.float64)
  params = jax.tree.map(lambda v: v, params)
  params["params"]["decoder"]["Dense_0"] = {"kernel": jnp.asarray(w, jnp.float32),
                                            "bias": jnp.asarray(b, jnp.float32)}
  sigma = np.linalg.inv(np.eye(2) + w @ w.T / s2)
  assert sigma[0, 1] / np.sqrt(sigma[0, 0] * sigma[1, 1]) < -0.5  # strongly correlated
  k_loc = w.T @ sigma / s2
  chol = np.linalg.cholesky(sigma)
  diag_raw = np.log(np.expm1(np.diag(chol) - 1e-4))  # inverse of softplus_floor
  kernel = np.zeros((2, 5))
  kernel[:, :2] = k_loc
  bias = np.concatenate([-b @ k_loc, [chol[1, 0]], diag_raw])
  params["params"]["encoder"]["Dense_0"] = {"kernel": jnp.asarray(kernel, jnp.float32),
                                            "bias": jnp.asarray(bias, jnp.float32)}
  log_px = _exact_log_marginal(params, np.asarray(batch["x"]))
  out = jax.device_get(vae.make_eval_fn(model, 16)(params, batch, jax.random.key(0)))
  # Every importance weight p(x, z) / q(z) equals p(x): the IWAE estimate is exact per example.
  np.testing.assert_allclose(out["iwae"], log_px, atol=2e-3)
  # The ELBO (closed-form KL, one-draw reconstruction) equals it in expectation.
  gap, se = _mean_and_se(out["elbo"] - log_px)
  assert abs(gap) < 4 * se, (gap, se)
