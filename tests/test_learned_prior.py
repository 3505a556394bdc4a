"""The learned conditional prior p(z | c) for every factorized family (joint ones: see
tests/test_joint_latents.py): it trains, its KL is the family's closed form where one exists,
and it learns a prior that depends on the label."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tiny
from pareto_vae_jax import distributions as D
from pareto_vae_jax import models, train
from pareto_vae_jax import vae


@pytest.mark.parametrize("latent", D.family_names())
def test_learned_conditional_prior_trains_and_depends_on_the_label(tmp_path, monkeypatch, latent):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 2048, 64))
  config = tiny.config(latent=latent, prior="learned", conditional=True, num_epochs=1)
  state, model, ds = train.fit(config, str(tmp_path))
  params = jax.device_get(state.params)
  labels = jnp.arange(2)
  p = vae.prior(model, params, labels, 2)
  assert isinstance(p, D.family_info(latent).cls)
  predicted = [v for name, v in zip(p.param_names, p.params)
               if name not in D.family_info(latent).latent_fixed
               and not (latent == "pareto" and name == "scale")]
  # The two classes get different priors: the prior network learned from the labels.
  assert any(float(jnp.max(jnp.abs(v[0] - v[1]))) > 1e-3 for v in predicted), p
  # The trainer's KL against it: closed form where registered, else the single-draw estimate.
  batch = {"x": jnp.asarray(ds.test_x[:64]), "y": jnp.asarray(ds.test_y[:64]),
           "index": jnp.arange(64)}
  terms = vae.terms(model, params, batch, jax.random.key(1))
  q = vae.encode(model, params, batch["x"], batch["y"])
  p = vae.prior(model, params, batch["y"], 64)
  if D.has_closed_form_kl(type(q), type(p)):
    np.testing.assert_allclose(terms["kl_dim"], D.kl(q, p), rtol=1e-5, atol=1e-6)
  assert np.isfinite(np.asarray(terms["kl_dim"])).all()


@pytest.mark.parametrize("latent,conditional,expected", [("pareto", True, "learned"),
                                                         ("pareto", False, "standard"),
                                                         ("gaussian", True, "standard")])
def test_the_default_prior_is_the_guides_learned_one_for_a_pareto_cvae(latent, conditional,
                                                                       expected):
  config = tiny.config(latent=latent, conditional=conditional)
  assert config.prior == "auto"  # the default
  assert vae.resolve_prior(config) == expected
  assert train.resolved(config).prior == expected and config.prior == "auto"  # a copy


def test_the_quick_start_command_trains_the_learned_conditional_pareto_prior(tmp_path, monkeypatch):
  import json  # pylint: disable=g-import-not-at-top
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))
  config = tiny.config(latent="pareto", conditional=True, num_epochs=1)  # prior: auto
  train.train_and_evaluate(config, str(tmp_path))
  assert json.loads((tmp_path / "config.json").read_text())["prior"] == "learned"
  state, spec, _ = train.fit(config, str(tmp_path))  # resumes: the same model
  assert spec.prior == "learned" and "prior_net" in state.params["params"]
  # The guide's p(z | c) = Pareto(alpha_p(c), x_m): alpha from the label, x_m fixed.
  p = vae.prior(spec, jax.device_get(state.params), jnp.arange(2), 2)
  assert isinstance(p, D.Pareto)
  np.testing.assert_allclose(p.scale, config.pareto_scale)
