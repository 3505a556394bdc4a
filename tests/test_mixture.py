"""Mixture priors: densities against scipy, the sampler, and the VampPrior and mixture prior in
training."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import pareto_vae_jax as pvj
from pareto_vae_jax import train
from pareto_vae_jax import vae
from pareto_vae_jax.distributions import mixture

import tiny


def _gaussian_mixture():
  loc = jnp.array([[-2.0, 0.0], [1.0, 3.0], [4.0, -1.0]])   # [K=3, D=2]
  scale = jnp.array([[0.5, 1.0], [1.0, 0.3], [2.0, 1.5]])
  logits = jnp.log(jnp.array([0.2, 0.5, 0.3]))
  return mixture.Mixture(logits, pvj.Gaussian(loc, scale)), np.asarray(loc), np.asarray(scale)


def test_log_prob_is_the_joint_mixture_density():
  mix, loc, scale = _gaussian_mixture()
  z = np.random.default_rng(0).normal(size=(50, 2)) * 2
  w = np.array([0.2, 0.5, 0.3])
  expected = np.log(sum(w[k] * scipy.stats.norm(loc[k], scale[k]).pdf(z).prod(-1)
                        for k in range(3)))
  np.testing.assert_allclose(mixture.log_prob(mix, z), expected, rtol=1e-5, atol=1e-5)


def test_positive_components_in_log_space_agree_with_z():
  alpha = jnp.array([[0.5, 2.0], [3.0, 1.0]])
  mix = mixture.Mixture(jnp.zeros(2), pvj.Pareto(alpha, 1.0))
  z = np.array([[1.5, 2.0], [1.01, 40.0], [7.0, 1.2]])
  np.testing.assert_allclose(mixture.log_prob_log(mix, np.log(z)), mixture.log_prob(mix, z),
                             rtol=1e-5)
  expected = np.log(0.5 * scipy.stats.pareto(np.asarray(alpha[0])).pdf(z).prod(-1)
                    + 0.5 * scipy.stats.pareto(np.asarray(alpha[1])).pdf(z).prod(-1))
  np.testing.assert_allclose(mixture.log_prob(mix, z), expected, rtol=1e-5)
  assert mixture.is_positive(mix)


def test_samples_follow_the_mixture():
  mix, loc, scale = _gaussian_mixture()
  z = np.asarray(mixture.rsample(jax.random.key(1), mix, (40_000,)))
  assert z.shape == (40_000, 2)
  w = np.array([0.2, 0.5, 0.3])
  for d in range(2):
    cdf = lambda t: sum(w[k] * scipy.stats.norm(loc[k, d], scale[k, d]).cdf(t) for k in range(3))
    assert scipy.stats.kstest(z[:, d], cdf).pvalue > 1e-3
  # The dimensions are dependent through the shared component: the joint is not a product.
  np.testing.assert_allclose(np.asarray(mixture.mean(mix)), (w[:, None] * loc).sum(0), rtol=1e-5)
  np.testing.assert_allclose(z.mean(0), (w[:, None] * loc).sum(0), atol=0.05)
  np.testing.assert_allclose(z.var(0), np.asarray(mixture.variance(mix)), rtol=0.05)


def test_shapes_are_checked():
  with pytest.raises(ValueError, match=r"\[..., K, D\]"):
    mixture.Mixture(jnp.zeros(4), pvj.Gaussian(jnp.zeros((3, 2)), 1.0))


@pytest.mark.parametrize("conditional", [False, True], ids=["vae", "cvae"])
def test_vamp_prior_is_the_mean_of_posteriors_at_the_pseudo_inputs(conditional):
  ds = tiny.small_dataset("synthetic_lognormal", 256, 64)
  config = tiny.config(latent="pareto", prior="vamp", prior_components=4,
                       conditional=conditional, decoder_input="log")
  model = vae.VAESpec.from_config(config, ds)
  params = train.init_state(model, train.make_optimizer(config), config).params
  y = jnp.asarray(ds.test_y[:5])
  p = vae.prior(model, params, y, 5)
  u = params["params"]["pseudo_inputs"]
  log_z = jnp.log(jnp.array([[1.3, 2.0]]))
  for i in range(5):
    label = jnp.full((4,), y[i]) if conditional else None
    q = vae.encode(model, params, u, label)  # [K, D]
    expected = jax.nn.logsumexp(pvj.log_prob_log(q, log_z).sum(-1)) - math.log(4)
    np.testing.assert_allclose(mixture.log_prob_log(p, log_z)[i], expected, rtol=1e-5)


@pytest.mark.parametrize("prior", ["vamp", "mixture"])
def test_training_with_a_mixture_prior(tmp_path, monkeypatch, prior):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))
  config = tiny.config(latent="pareto", prior=prior, prior_components=3, conditional=True,
                       num_epochs=1, decoder_input="log")
  results = train.train_and_evaluate(config, str(tmp_path))
  assert results["finished"] and math.isfinite(results["iwae"]), results
  slack = 3 * math.hypot(results["elbo_stderr"], results["iwae_stderr"])
  assert results["iwae"] >= results["elbo"] - slack


def test_free_bits_need_a_factorized_prior(tmp_path, monkeypatch):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))
  with pytest.raises(ValueError, match="free_bits needs a factorized prior"):
    train.train_and_evaluate(tiny.config(prior="vamp", free_bits=0.1), str(tmp_path))


def test_vamp_cvae_on_images_writes_its_samples(tmp_path, monkeypatch):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("mnist", 128, 64))
  config = tiny.config(dataset="mnist", likelihood="bernoulli", latent="gaussian", prior="vamp",
                       prior_components=3, conditional=True, num_epochs=1)
  results = train.train_and_evaluate(config, str(tmp_path))
  assert results["finished"]
  from pareto_vae_jax import evaluate
  written = evaluate.write_pictures(evaluate.load_run(str(tmp_path)), str(tmp_path / "pics"))
  assert any(p.endswith("class_samples.png") for p in written)
  for name in ("samples.png", "reconstructions.png"):
    assert (tmp_path / name).exists()
