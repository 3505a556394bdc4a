"""Test-set evaluation: consistent inputs, the IWAE bound against an exact likelihood, and the
evaluation entry point on a tiny trained run."""

from __future__ import annotations

import json
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pareto_vae_jax import data as data_lib
from pareto_vae_jax import evaluate, train
from pareto_vae_jax import vae

import tiny


def test_binarized_evaluation_scores_elbo_and_iwae_on_the_same_binary_draw():
  x = tiny.mnist_like(32)
  y = np.arange(32, dtype=np.int32) % 10
  ds = data_lib.Dataset(train_x=x, train_y=y, test_x=x, test_y=y, num_classes=10,
                        input_shape=(28, 28, 1), name="mnist", source="random pixels")
  binarized = tiny.config(dataset="mnist", likelihood="bernoulli", binarize=True)
  model = vae.VAESpec.from_config(binarized, ds)
  params = train.init_state(model, train.make_optimizer(binarized), binarized).params
  batch = {"x": jnp.asarray(x), "y": jnp.asarray(y), "index": jnp.arange(32)}
  key = jax.random.key(3)

  draw = vae.observed(model, batch, key)
  assert set(np.unique(draw)) == {0.0, 1.0}
  # Evaluating the binarizing model on x must equal evaluating it, binarization off, on the
  # draw itself: the ELBO and the IWAE bound then both score the same binary image.
  plain = vae.VAESpec.from_config(tiny.config(dataset="mnist", likelihood="bernoulli",
                                               binarize=False), ds)
  actual = vae.make_eval_fn(model, 4)(params, batch, key)
  desired = vae.make_eval_fn(plain, 4)(params, batch | {"x": draw}, key)
  for name in ("elbo", "iwae", "recon", "kl"):
    np.testing.assert_allclose(actual[name], desired[name], rtol=1e-6, err_msg=name)


# ------------------------------------------------------------------------------------------------
# The IWAE bound on a model whose exact likelihood is known.


def _linear_gaussian_vae(seed=0):
  """A VAE with linear encoder and decoder, N(0, I) prior, Gaussian likelihood (std 0.5).

  Its marginal is exact: x ~ N(b, W^T W + 0.25 I) for the decoder's Dense (kernel W, bias b).
  The encoder is left at its random initialization, so the ELBO is far from tight.
  """
  ds = tiny.small_dataset("synthetic_lognormal", 256, 200)
  config = tiny.config(latent="gaussian", hidden=(), latent_dim=2, likelihood="gaussian",
                       gaussian_scale=0.5, conditional=False, seed=seed)
  model = vae.VAESpec.from_config(config, ds)
  params = train.init_state(model, train.make_optimizer(config), config).params
  # Standardized inputs keep the random linear model in a sensible range.
  x = (ds.test_x - ds.test_x.mean(0)) / ds.test_x.std(0)
  return config, model, params, x.astype(np.float32), ds.test_y


def _exact_log_marginal(params, x):
  import scipy.stats
  dense = params["params"]["decoder"]["Dense_0"]
  w, b = np.asarray(dense["kernel"], np.float64), np.asarray(dense["bias"], np.float64)
  cov = w.T @ w + 0.25 * np.eye(len(b))
  return scipy.stats.multivariate_normal(b, cov).logpdf(x)


def test_iwae_is_above_the_elbo_below_log_p_x_and_tightens_as_k_grows():
  config, model, params, x, y = _linear_gaussian_vae()
  batch = {"x": jnp.asarray(x), "y": jnp.asarray(y), "index": jnp.arange(len(x))}
  log_px = _exact_log_marginal(params, x)
  key = jax.random.key(11)
  ks = (1, 8, 64, 512)
  out = {k: jax.device_get(vae.make_eval_fn(model, k)(params, batch, key)) for k in ks}
  elbo = np.asarray(out[1]["elbo"], np.float64)
  iwae = {k: np.asarray(out[k]["iwae"], np.float64) for k in ks}

  def mean_and_se(v):
    return v.mean(), v.std() / np.sqrt(len(v))

  # k = 1 is the ELBO, estimated from other draws: equal in expectation.
  diff, se = mean_and_se(iwae[1] - elbo)
  assert abs(diff) < 4 * se + 1e-6, (diff, se)
  # Monotone in k (Burda et al. 2016, theorem 1), bounded by log p(x), and converging to it.
  gaps = {}
  for k in ks:
    gaps[k] = mean_and_se(log_px - iwae[k])
    assert gaps[k][0] > -4 * gaps[k][1], (k, gaps[k])
  for small, large in zip(ks, ks[1:]):
    step, se = mean_and_se(iwae[large] - iwae[small])
    assert step > -4 * se, (small, large, step, se)
  assert gaps[1][0] > 1.0, gaps  # the random encoder leaves a real gap to close
  for small, large in ((1, 8), (8, 512)):  # and more samples close it, significantly
    step, se = mean_and_se(iwae[large] - iwae[small])
    assert step > 4 * se, (small, large, step, se)
  assert gaps[512][0] < 0.2 * gaps[1][0], gaps


# ------------------------------------------------------------------------------------------------
# The evaluation entry point on a tiny trained run.


@pytest.fixture(scope="module")
def tiny_mnist_run(tmp_path_factory):
  with pytest.MonkeyPatch.context() as mp:
    tiny.patch_dataset(mp, tiny.small_dataset("mnist", 256, 200))
    workdir = str(tmp_path_factory.mktemp("run"))
    # The guide's shared-scale Pareto CVAE with the fixed Pareto(1, x_m) prior, whose KL the
    # tests below recompute by hand.
    config = tiny.config(dataset="mnist", likelihood="bernoulli", conditional=True,
                         prior="standard", num_epochs=1, latent_dim=4, iwae_samples=16)
    results = train.train_and_evaluate(config, workdir)
    yield workdir, results, mp


def test_evaluation_of_a_restored_run_reproduces_its_training_time_test_metrics(tiny_mnist_run):
  workdir, trained, _ = tiny_mnist_run
  results = evaluate.evaluate_workdir(workdir, iwae_samples=16, pictures=False)
  # Same checkpoint, same seed, per-example keys: the same draws, so the same numbers.
  for name in ("elbo", "recon", "kl", "iwae"):
    np.testing.assert_allclose(results[name], trained[name], rtol=1e-6)
  assert results["num_examples"] == 200 and results["nll_iwae"] == -results["iwae"]
  assert results["active_units"] == sum(a > 0.01 for a in results["activity"])
  assert "not binarized" in results["likelihood"]
  with open(os.path.join(workdir, "evaluation", "evaluation.json")) as f:
    assert json.load(f)["iwae"] == results["iwae"]
  with open(os.path.join(workdir, "evaluation", "evaluation.md")) as f:
    text = f.read()
  assert f"{results['nll_iwae']:.2f}" in text and "E[log z \\| x]" in text


def test_active_units_are_counted_on_the_posterior_statistic(tiny_mnist_run):
  workdir, _, _ = tiny_mnist_run
  run = evaluate.load_run(workdir)
  encoded = evaluate.encode_test_set(run)
  # Pareto: E[log z | x] = log x_m + 1 / alpha, recomputed here from the encoder's alpha.
  expected = np.log(encoded["params"]["scale"]) + 1 / encoded["params"]["alpha"]
  np.testing.assert_allclose(encoded["codes"], expected, rtol=1e-5)
  results = evaluate.evaluate_run(run, iwae_samples=2, verbose=False)
  np.testing.assert_allclose(results["activity"], expected.var(0), rtol=1e-5)
  # The per-dimension rate: the guide's shared-scale Pareto KL to Pareto(1, x_m), by hand.
  alpha = encoded["params"]["alpha"].astype(np.float64)
  np.testing.assert_allclose(results["kl_per_dim"],
                             (np.log(alpha) + 1 / alpha - 1).mean(0), rtol=1e-4)
  assert results["kl_active_units"] == sum(k > 0.01 for k in results["kl_per_dim"])


def test_every_picture_is_written(tiny_mnist_run):
  workdir, _, _ = tiny_mnist_run
  run = evaluate.load_run(workdir)
  written = evaluate.write_pictures(run, str(pathlib.Path(workdir) / "pictures"))
  names = {os.path.basename(p) for p in written}
  assert names == {"training_curves.png", "latent.png", "posterior_parameters.png",
                   "traversal.png", "interpolations.png", "class_samples.png",
                   "style_transfer.png", "interpolation_labels.png"}
  for path in written:
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n", path


def test_evaluating_a_directory_without_checkpoints_says_how_to_train(tmp_path):
  with pytest.raises(FileNotFoundError, match="python -m pareto_vae_jax.main"):
    evaluate.load_run(str(tmp_path / "nothing"))
  assert not (tmp_path / "nothing").exists()


def test_command_line_evaluates_runs_writes_a_summary_and_the_family_gallery(tiny_mnist_run,
                                                                               tmp_path):
  import subprocess
  import sys
  workdir, _, _ = tiny_mnist_run
  summary, gallery = tmp_path / "summary.md", tmp_path / "families.png"
  proc = subprocess.run(
      [sys.executable, "-m", "pareto_vae_jax.evaluate", f"--workdir={workdir}",
       "--iwae_samples=4", "--max_examples=100", "--nopictures", f"--summary={summary}",
       f"--family_gallery={gallery}"],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  table = summary.read_text()
  assert table.startswith("| run | latent |") and "| pareto | yes | standard |" in table
  with open(gallery, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  bad = subprocess.run([sys.executable, "-m", "pareto_vae_jax.evaluate", "--iwae_samples=0",
                        f"--workdir={workdir}"], capture_output=True, text=True, timeout=120)
  assert bad.returncode != 0 and "--iwae_samples must be >= 1" in bad.stderr
