"""The claims measurements: tail indices of latent draws, and a tiny run end to end."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pareto_vae_jax import claims, evaluate, train

import tiny


def test_tail_indices_recover_known_tails():
  rng = np.random.default_rng(0)
  draws = np.stack([rng.pareto(1.5, 20_000) + 1, rng.pareto(3.0, 20_000) + 1], 1)
  alpha, se = claims.tail_indices(draws, positive=True)
  assert np.all(np.abs(alpha - [1.5, 3.0]) < 3 * se), (alpha, se)
  # A Gaussian column, read two-sided: much lighter than any of the factors' tails.
  alpha, _ = claims.tail_indices(rng.standard_normal((20_000, 1)), positive=False)
  assert alpha[0] > 5.0


@pytest.fixture(scope="module")
def tiny_pareto_run(tmp_path_factory):
  full = tiny._loaded("synthetic_pareto")
  ds = dataclasses.replace(full, train_x=full.train_x[:512], train_y=full.train_y[:512],
                           test_x=full.test_x[:2000], test_y=full.test_y[:2000],
                           factors_train=full.factors_train[:512],
                           factors_test=full.factors_test[:2000])
  with pytest.MonkeyPatch.context() as mp:
    tiny.patch_dataset(mp, ds)
    workdir = str(tmp_path_factory.mktemp("claims"))
    config = tiny.config(dataset="synthetic_pareto", latent="pareto", latent_dim=4,
                         head_init_scale=0.01, num_epochs=1)
    train.train_and_evaluate(config, workdir)
    yield evaluate.load_run(workdir), ds


def test_measure_reports_matched_tail_indices_and_mig(tiny_pareto_run):
  run, ds = tiny_pareto_run
  result = claims.measure(run)
  assert sorted(result) == sorted([
      "run", "latent", "prior", "true_alpha", "factor_alpha_hill", "factor_alpha_se",
      "latent_alpha_hill", "latent_alpha_se", "matched_dim", "matched_alpha", "matched_code_alpha",
      "mean_abs_log_ratio", "spearman_matched_vs_true", "mig", "mig_bootstrap_se",
      "mig_per_factor", "test_elbo"])
  np.testing.assert_array_equal(result["true_alpha"], ds.factor_tail_index)
  # The estimator applied to the true factors recovers them (2000 draws, k = 100).
  truth, se = np.array(result["factor_alpha_hill"]), np.array(result["factor_alpha_se"])
  assert np.all(np.abs(truth - ds.factor_tail_index) < 4 * se), (truth, se)
  assert all(0 <= d < 4 for d in result["matched_dim"])
  np.testing.assert_allclose(result["matched_alpha"],
                             np.array(result["latent_alpha_hill"])[result["matched_dim"]])
  assert 0.0 <= result["mig"] <= 1.0 and 0.0 < result["mig_bootstrap_se"] < 0.2
  assert "| pareto | standard |" in claims.markdown([result])


def test_measure_refuses_data_without_factors(tmp_path, monkeypatch):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))
  train.train_and_evaluate(tiny.config(num_epochs=1), str(tmp_path))
  with pytest.raises(ValueError, match="synthetic_pareto"):
    claims.measure(evaluate.load_run(str(tmp_path)))
