"""experiments/heavy_tailed_reconstruction.py: its metrics against independent references (no
training)."""

import math

import numpy as np
import pytest
from scipy import stats

import tiny


@pytest.fixture(scope="module")
def htr():
  return tiny.experiment("heavy_tailed_reconstruction")


def _ratio_se(p: float, *sizes: int) -> float:
  """Standard deviation of an estimated tail mass / p: binomial in each sample (the reference's
  quantile error moves the mass as much as a sample of its size would)."""
  return math.sqrt((1 - p) / p * sum(1.0 / n for n in sizes))


def test_tail_ratios_are_one_for_the_same_distribution(htr):
  rng = np.random.default_rng(0)
  dim, n_ref, n_gen = 3, 400_000, 200_000
  ref = rng.standard_t(2.0, size=(n_ref, dim))
  gen = rng.standard_t(2.0, size=(n_gen, dim))
  quantiles = htr.reference_quantiles(ref, (1e-2, 1e-3))
  got = htr.tail_ratios(gen, quantiles)
  for p in (1e-2, 1e-3):
    tol = 4 * _ratio_se(p, n_ref, n_gen)
    for side in ("lower", "upper"):
      assert len(got[f"{side}_{p:g}"]) == dim
      np.testing.assert_allclose(got[f"{side}_{p:g}"], 1.0, atol=tol)
    assert abs(got[f"norm_{p:g}"] - 1.0) < tol
  # Every log10 ratio is within ~4 standard errors of 0 (log10(1 + d) ~ d / ln 10).
  assert got["coord_mean_abs_log10"] < 4 * _ratio_se(1e-3, n_ref, n_gen) / math.log(10)
  assert got["norm_mean_abs_log10"] < 4 * _ratio_se(1e-3, n_ref, n_gen) / math.log(10)


def test_tail_ratios_against_exact_quantiles_and_a_known_shift_of_mass(htr):
  # Classical Pareto(alpha) (scale 1): P(X > t) = t^-alpha. Against the exact quantiles, c X has
  # c^alpha times the upper mass; the lower p-quantile of X is (1 - p)^(-1 / alpha).
  alpha, c, n = 2.0, 1.5, 400_000
  rng = np.random.default_rng(1)
  x = (rng.pareto(alpha, size=(n, 1)) + 1.0)
  quantiles = {
      p: {
          "lower": np.array([(1 - p)**(-1 / alpha)]),
          "upper": np.array([p**(-1 / alpha)]),
          "norm": p**(-1 / alpha),
      } for p in (1e-2, 1e-3)
  }
  same = htr.tail_ratios(x, quantiles)
  scaled = htr.tail_ratios(c * x, quantiles)
  for p in (1e-2, 1e-3):
    tol = 4 * _ratio_se(p, n)
    assert abs(same[f"upper_{p:g}"][0] - 1) < tol
    assert abs(same[f"lower_{p:g}"][0] - 1) < tol
    assert abs(same[f"norm_{p:g}"] - 1) < tol
    assert abs(scaled[f"upper_{p:g}"][0] - c**alpha) < 4 * c**alpha * _ratio_se(c**alpha * p, n)
    assert scaled[f"lower_{p:g}"][0] == 0.0  # c X >= c > every lower quantile here


def test_empty_tails_count_as_one_over_n(htr):
  n = 1000
  x = np.zeros((n, 2))
  quantiles = {
      p: {
          "lower": np.full(2, -1.0),
          "upper": np.full(2, 1.0),
          "norm": 1.0
      } for p in (1e-2, 1e-3)
  }
  got = htr.tail_ratios(x, quantiles)
  want = np.mean([abs(math.log10(1 / (n * p))) for p in (1e-2, 1e-3)])  # 1 and 0
  assert got["coord_mean_abs_log10"] == pytest.approx(want)
  assert got["norm_mean_abs_log10"] == pytest.approx(want)
  assert got["upper_0.01"] == [0.0, 0.0]


@pytest.mark.parametrize("alpha", [1.5, 3.0])
def test_hill_recovers_a_pareto_tail_index(htr, alpha):
  rng = np.random.default_rng(int(alpha * 10))
  n, frac = 200_000, 0.01
  k = round(frac * n)
  x = (rng.pareto(alpha, size=n) + 1.0) * 2.0  # classical Pareto(alpha), scale 2
  got = htr.hill_tail_index(x, frac)
  assert abs(got - alpha) < 3 * alpha / math.sqrt(k)  # one sample: within 3 standard errors
  # Over many samples, the estimates' mean is alpha within the Monte Carlo error of the mean
  # (Hill's estimator: alpha k / Gamma(k, 1), mean alpha k / (k - 1)).
  reps = 200
  many = [htr.hill_tail_index(rng.pareto(alpha, size=20_000) + 1.0, frac) for _ in range(reps)]
  k = round(frac * 20_000)
  assert abs(np.mean(many) - alpha * k / (k - 1)) < 4 * alpha / math.sqrt(k) / math.sqrt(reps)
  assert np.std(many) == pytest.approx(alpha / math.sqrt(k), rel=0.2)


def test_hill_matches_the_formula_on_a_small_example(htr):
  values = np.array([1.0, 8.0, 2.0, 4.0, 16.0, 3.0, 0.5, 5.0, 7.0, 6.0])
  # frac 0.3 of 10: the 3 largest (16, 8, 7) over the 4th (6).
  want = 1.0 / np.mean(np.log(np.array([16.0, 8.0, 7.0]) / 6.0))
  assert htr.hill_tail_index(values, 0.3) == pytest.approx(want)
  assert math.isnan(htr.hill_tail_index(np.zeros(100), 0.1))


def test_reconstruction_metrics_match_a_loop(htr):
  rng = np.random.default_rng(3)
  n, d = 200, 5
  x = stats.t.rvs(2.0, size=(n, d), random_state=rng)
  recon = x + rng.normal(scale=0.3, size=(n, d)) * (1 + np.abs(x))
  got = htr.reconstruction_metrics(x, recon, fracs=(0.05, 0.01))

  def errors(rows):
    abs_err = [abs(recon[i][j] - x[i][j]) for i in rows for j in range(d)]
    rel = []
    for i in rows:
      err_norm = math.sqrt(sum((recon[i][j] - x[i][j])**2 for j in range(d)))
      rel.append(err_norm / math.sqrt(sum(x[i][j]**2 for j in range(d))))
    return {
        "mae": sum(abs_err) / len(abs_err),
        "median_ae": float(np.median(abs_err)),
        "rmse": math.sqrt(sum(e * e for e in abs_err) / len(abs_err)),
        "median_rel_l2": float(np.median(rel)),
    }

  norms = [math.sqrt(sum(v * v for v in row)) for row in x]
  by_norm = sorted(range(n), key=lambda i: -norms[i])
  for prefix, rows in (("recon", range(n)), ("top5", by_norm[:10]), ("top1", by_norm[:2])):
    for name, value in errors(list(rows)).items():
      assert got[f"{prefix}_{name}"] == pytest.approx(value, rel=1e-12), (prefix, name)
  assert got["top5_count"] == 10 and got["top1_count"] == 2
  assert got["recon_nonfinite_rows"] == 0
  assert sorted(htr.extreme_indices(x, 0.05)) == sorted(by_norm[:10])


def test_class_labels_are_balanced(htr):
  labels = htr.class_labels(10_002, seed=0)
  assert labels.dtype == np.int32
  np.testing.assert_array_equal(np.bincount(labels), [2501, 2501, 2500, 2500])
  assert not np.array_equal(labels[:8], np.arange(8) % 4)  # shuffled


def test_model_flags_are_the_ones_main_knows(htr):
  from pareto_vae_jax import config as config_lib
  known = set(config_lib.get_config())
  for _, _, flags in htr.MODELS:
    for flag in flags:
      if flag.startswith("--config."):
        assert flag[len("--config."):].split("=")[0] in known, flag
  for flag in htr.common_flags(1):
    if flag.startswith("--config."):
      assert flag[len("--config."):].split("=")[0] in known, flag
