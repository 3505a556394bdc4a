"""Tests of experiments/heavy_tail_figures.py: the per-class averaging of posterior parameters
(figures 26 and 27) and the metrics.jsonl reader (figure 12)."""

import json

import numpy as np
import pytest

import tiny


@pytest.fixture(scope="module")
def htf():
  return tiny.experiment("heavy_tail_figures")


def test_class_average_matches_a_loop(htf):
  rng = np.random.default_rng(0)
  n, d, c = 257, 5, 10
  labels = np.concatenate([np.arange(c), rng.integers(0, c, n - c)])
  params = {"loc": rng.normal(size=(n, d)), "scale": rng.lognormal(size=(n, d)).astype(np.float32)}
  got = htf.class_average(params, labels, c)
  assert set(got) == {"loc", "scale"}
  for name, value in params.items():
    want = np.zeros((c, d))
    for k in range(c):
      rows = [value[i] for i in range(n) if labels[i] == k]
      want[k] = np.sum(rows, axis=0) / len(rows)
    assert got[name].shape == (c, d)
    np.testing.assert_allclose(got[name], want, rtol=1e-6)


def test_class_average_rejects_an_empty_class(htf):
  with pytest.raises(ValueError, match=r"classes \[2\]"):
    htf.class_average({"loc": np.zeros((3, 1))}, np.array([0, 1, 1]), 3)


def test_read_kl_curve_keeps_train_lines_and_the_last_of_a_rerun_epoch(htf, tmp_path):
  lines = [
      {
          "step": 1,
          "split": "train",
          "epoch": 1,
          "kl": 3.0,
          "recon": 9.0
      },
      {
          "step": 2,
          "split": "train",
          "epoch": 2,
          "kl": 5.0
      },
      {
          "step": 2,
          "split": "train",
          "epoch": 2,
          "kl": 4.5
      },  # the epoch re-run after a resume
      {
          "step": 3,
          "split": "train",
          "epoch": 3,
          "kl": 6.0
      },
      {
          "step": 3,
          "split": "test",
          "kl": 99.0
      },
  ]
  path = tmp_path / "metrics.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 4, "split": "tr')
  epochs, kl = htf.read_kl_curve(str(path))
  np.testing.assert_array_equal(epochs, [1, 2, 3])
  np.testing.assert_allclose(kl, [3.0, 4.5, 6.0])


def test_find_beta_runs_parses_the_directory_names(htf, tmp_path):
  for name in ("gaussian-beta0.02", "inverse_gaussian-beta0.3", "gaussian", "lognormal-beta0.1"):
    (tmp_path / name).mkdir()
  for name in ("gaussian-beta0.02", "inverse_gaussian-beta0.3", "gaussian"):
    (tmp_path / name /
     "metrics.jsonl").write_text(json.dumps({
         "split": "train",
         "epoch": 1,
         "kl": 2.0
     }) + "\n")
  (tmp_path / "gaussian-beta0.02" / "test_metrics.json").write_text("{}")
  runs = htf.find_beta_runs(str(tmp_path))  # lognormal-beta0.1 has no metrics.jsonl yet
  assert [(r["latent"], r["beta"], r["finished"]) for r in runs] == [("gaussian", 0.02, True),
                                                                     ("inverse_gaussian", 0.3,
                                                                      False)]
