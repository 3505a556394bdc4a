"""Latent-code metrics against independent references: scipy's Pareto MLE, the exact sampling law
of the Hill estimator, exponential order statistics, scipy ranks and G-tests, hand-made tables."""

import numpy as np
import pytest
from scipy import special, stats

from pareto_vae_jax import metrics


def _pareto(rng, alpha, size):
  """Pareto type I with scale 1: numpy's ``pareto`` is the Lomax law, shifted by 1."""
  return rng.pareto(alpha, size) + 1


# Hill estimator.


def test_hill_estimator_equals_scipy_pareto_mle_above_the_k_plus_1_th_largest_value():
  # Hill is the MLE of a Pareto tail with its scale fixed at the threshold X_(k+1).
  x = np.random.default_rng(0).lognormal(size=3000)
  k = 150
  descending = np.sort(x)[::-1]
  expected = stats.pareto.fit(descending[:k], floc=0, fscale=descending[k])[0]
  alpha_hat, stderr = metrics.hill_estimator(x, k)
  np.testing.assert_allclose(alpha_hat, expected, rtol=1e-12)
  np.testing.assert_allclose(stderr, expected / np.sqrt(k), rtol=1e-12)


def test_hill_estimator_ignores_non_positive_values():
  rng = np.random.default_rng(1)
  x = _pareto(rng, 2.0, 500)
  with_negatives = np.concatenate([-_pareto(rng, 0.5, 300), np.zeros(10), x])
  assert metrics.hill_estimator(with_negatives, 100) == metrics.hill_estimator(x, 100)


@pytest.mark.parametrize("alpha", [1.5, 3.0, 5.0])
def test_hill_tail_index_is_within_3_stderr_of_alpha_for_pareto_samples(alpha):
  x = _pareto(np.random.default_rng(2), alpha, 20_000)  # k = 1000, stderr = alpha / 31.6
  alpha_hat, stderr = metrics.hill_tail_index(x)
  assert abs(alpha_hat - alpha) < 3 * stderr


def test_hill_mean_and_stderr_match_the_exact_law_of_the_estimator_for_pareto_samples():
  # For Pareto samples the k log-excesses are iid Exp(alpha) (Renyi), so alpha_hat = alpha k / G
  # with G ~ Gamma(k): E = alpha k / (k - 1) and sd = alpha k / ((k - 1) sqrt(k - 2)), 1% above
  # the asymptotic stderr alpha / sqrt(k) at k = 200.
  alpha, k, reps = 3.0, 200, 2000
  rng = np.random.default_rng(3)
  estimates, stderrs = np.array(
      [metrics.hill_estimator(_pareto(rng, alpha, k + 1), k) for _ in range(reps)]).T
  exact_mean = alpha * k / (k - 1)
  exact_sd = exact_mean / np.sqrt(k - 2)
  assert abs(estimates.mean() - exact_mean) < 4 * exact_sd / np.sqrt(reps)
  # The sample sd of 2000 near-normal draws has relative standard error 1 / sqrt(2 reps) = 1.6%.
  np.testing.assert_allclose(estimates.std(), exact_sd, rtol=0.08)
  np.testing.assert_allclose(stderrs.mean(), alpha / np.sqrt(k), rtol=0.08)


@pytest.mark.parametrize("alpha", [1.5, 3.0, 5.0])
def test_hill_tail_index_recovers_the_pareto_tail_of_a_mixture_with_a_uniform_body(alpha):
  # 80% Uniform(0, 1.5), 20% Pareto(alpha): above 1.5 the tail is exactly 0.2 x^-alpha, and the
  # top 2% starts at 10^(1 / alpha) >= 1.58, so the estimate sees only the Pareto part.
  n, fraction = 50_000, 0.02
  rng = np.random.default_rng(4)
  x = np.where(rng.uniform(size=n) < 0.8, rng.uniform(0, 1.5, n), _pareto(rng, alpha, n))
  k = int(fraction * n)
  assert np.sort(x)[-k - 1] > 1.5  # the premise
  alpha_hat, stderr = metrics.hill_tail_index(x, fraction=fraction)
  assert abs(alpha_hat - alpha) < 3 * stderr
  # The top 20% reach into the body (P(X > 1.5) = 0.2 * 1.5^-alpha < 0.2), far past the stderr.
  alpha_body, stderr_body = metrics.hill_tail_index(x, fraction=0.2)
  assert abs(alpha_body - alpha) > 10 * stderr_body


def _exponential_hill_limit(t):
  """Hill's limit for Exp(1) excesses E over threshold t: 1 / E log(1 + E / t) = 1 / (e^t E1(t))."""
  return 1 / (np.exp(t) * special.exp1(t))


def test_hill_estimate_of_an_exponential_sample_grows_like_log_n_over_k_for_fixed_k():
  # Above the threshold T = X_(k+1) the excesses are Exp(1) (memoryless), and
  # E T = H_n - H_k = psi(n + 1) - psi(k + 1). Tolerance 4 stderr: T's own spread (sd about
  # 1 / sqrt(k)) adds to the stderr.
  k, rng = 200, np.random.default_rng(5)
  estimates = []
  for n in [10**3, 10**4, 10**5, 10**6]:
    alpha_hat, stderr = metrics.hill_estimator(rng.exponential(size=n), k)
    t = special.digamma(n + 1) - special.digamma(k + 1)
    assert abs(alpha_hat - _exponential_hill_limit(t)) < 4 * stderr
    estimates.append(alpha_hat)
  assert np.all(np.diff(estimates) > 0)
  assert estimates[-1] > 6.5  # 9.5 expected, 4.5 stderr margin; heavy tails above are 1.5 to 5


def test_hill_tail_index_of_an_exponential_sample_converges_to_a_finite_value_at_fixed_fraction():
  # The documented pitfall: at a fixed 5% the threshold stays at t = log 20 and the estimate at
  # 1 / (e^t E_1(t)) = 3.81, which alone would pass for a heavy tail.
  n = 10**6
  alpha_hat, stderr = metrics.hill_tail_index(np.random.default_rng(6).exponential(size=n))
  t = special.digamma(n + 1) - special.digamma(int(0.05 * n) + 1)
  assert abs(alpha_hat - _exponential_hill_limit(t)) < 4 * stderr
  assert alpha_hat < 4


def test_hill_estimator_raises_naming_the_shortage_of_positive_values():
  x = np.concatenate([-np.ones(100), np.arange(1.0, 6.0)])
  with pytest.raises(ValueError, match=r"at least k \+ 1 = 6 positive values, got 5 of 105"):
    metrics.hill_estimator(x, 5)
  with pytest.raises(ValueError, match=r"at least min_k \+ 1 = 51 positive values, got 5"):
    metrics.hill_tail_index(x)


@pytest.mark.parametrize("x, k, message", [
    (np.ones(10), 3, "4 largest positive values all equal"),
    (np.array([1.0, 2.0, np.inf]), 1, "finite"),
    (np.ones((5, 2)), 1, "1 axes"),
    (np.arange(1.0, 10.0), 0, "positive integer"),
])
def test_hill_estimator_raises_on_bad_input(x, k, message):
  with pytest.raises(ValueError, match=message):
    metrics.hill_estimator(x, k)


@pytest.mark.parametrize("alpha", [1.5, 3.0])
def test_two_sided_tail_index_recovers_a_pareto_lower_tail(alpha):
  # 90% N(c, 0.3^2) with c chosen so that the median is 0, 10% -Pareto(alpha): the tail of
  # |x - median| is the Pareto one, and the upper tail of x is Gaussian.
  n, fraction = 100_000, 0.02
  c = -0.3 * stats.norm.ppf(4 / 9)  # 0.9 Phi(-c / 0.3) + 0.1 = 1/2
  rng = np.random.default_rng(7)
  x = np.where(rng.uniform(size=n) < 0.9, rng.normal(c, 0.3, n), -_pareto(rng, alpha, n))
  alpha_hat, stderr = metrics.two_sided_tail_index(x, fraction=fraction)
  assert abs(alpha_hat - alpha) < 3 * stderr
  shifted = metrics.two_sided_tail_index(x + 100, fraction=fraction)
  np.testing.assert_allclose(shifted, (alpha_hat, stderr), rtol=1e-9)


# Active units.


def test_active_units_counts_the_dimensions_whose_statistic_varies():
  rng = np.random.default_rng(8)
  stats_ = rng.normal(0.5, np.array([1, 1, 1] + [0.01] * 5), (2000, 8))  # variances 1 and 1e-4
  activity, num_active = metrics.active_units(stats_)
  assert num_active == 3
  np.testing.assert_allclose(activity, np.var(stats_, axis=0), rtol=1e-12)
  assert activity[:3].min() > 0.9 and activity[3:].max() < 2e-4
  assert metrics.active_units(stats_, threshold=1e-5)[1] == 8


def test_active_units_raises_on_a_single_example():
  with pytest.raises(ValueError, match="at least 2"):
    metrics.active_units(np.ones((1, 4)))


# Discretization.


def test_discretize_gives_equal_counts_where_equal_width_bins_crowd_a_heavy_tail():
  x = _pareto(np.random.default_rng(9), 0.5, 1000)
  np.testing.assert_array_equal(np.bincount(metrics.discretize(x, 20)), np.full(20, 50))
  assert np.histogram(x, 20)[0][0] > 0.95 * x.size  # what quantile bins avoid


def test_discretize_matches_min_ranks_and_shares_bins_between_ties():
  # Reference: bin = floor(bins * (number of values strictly below) / N), from scipy's min-rank.
  rng = np.random.default_rng(10)
  x = np.concatenate([np.zeros(300), np.round(rng.normal(size=703), 1)])
  rng.shuffle(x)
  bins = 20
  expected = (stats.rankdata(x, method="min").astype(np.int64) - 1) * bins // x.size
  labels = metrics.discretize(x, bins)
  np.testing.assert_array_equal(labels, expected)
  for value in np.unique(x):
    assert np.unique(labels[x == value]).size == 1
  counts = np.bincount(labels[x != 0])  # away from the tie block the bins stay near N / bins
  assert counts[counts > 0].max() <= 2 * x.size / bins


def test_discretize_keeps_every_value_of_a_column_with_at_most_bins_values():
  # A rare class would merge with its neighbour under the quantile rule (3% < 1 / 20).
  rng = np.random.default_rng(11)
  x = rng.choice([-2.0, 7.0, 9.5], size=1000, p=[0.03, 0.5, 0.47])
  np.testing.assert_array_equal(metrics.discretize(x, 20),
                                stats.rankdata(x, method="dense") - 1)


def test_discretize_bins_each_column_on_its_own_and_only_by_rank():
  rng = np.random.default_rng(12)
  x = rng.normal(size=(1001, 3))
  labels = metrics.discretize(x, 7)
  assert labels.shape == x.shape
  for j in range(3):
    np.testing.assert_array_equal(labels[:, j], metrics.discretize(x[:, j], 7))
  np.testing.assert_array_equal(metrics.discretize(np.exp(5 * x) + 3, 7), labels)


# Mutual information.


def _table_mutual_information(table):
  p = table / table.sum()
  outer = p.sum(axis=1, keepdims=True) * p.sum(axis=0, keepdims=True)
  nonzero = p > 0
  return np.sum(p[nonzero] * np.log(p[nonzero] / outer[nonzero]))


def _samples_from_table(table, row_values, col_values):
  rows, cols = np.nonzero(table)
  counts = table[rows, cols]
  return np.repeat(row_values[rows], counts), np.repeat(col_values[cols], counts)


@pytest.mark.parametrize("table, row_values, col_values", [
    (np.array([[4, 1], [2, 3]]), np.array([-1.0, 5.0]), np.array([0.5, 2.0])),
    (np.array([[3, 0], [1, 2], [0, 4]]), np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0])),
])
def test_mutual_information_equals_the_formula_on_a_hand_made_joint_table(table, row_values,
                                                                          col_values):
  # [[4, 1], [2, 3]] / 10: MI = 0.4 log(0.4 / 0.3) + 0.1 log(0.1 / 0.2) + 0.2 log(0.2 / 0.3)
  # + 0.3 log(0.3 / 0.2) = 0.0863 nats.
  a, b = _samples_from_table(table, row_values, col_values)
  # As many bins as values: discrete columns are kept exact.
  mi = metrics.mutual_information(a[:, None], b[:, None], bins=max(table.shape))
  assert mi.shape == (1, 1)
  np.testing.assert_allclose(mi[0, 0], _table_mutual_information(table), rtol=1e-12)
  np.testing.assert_allclose(metrics.entropy(a), stats.entropy(table.sum(axis=1)), rtol=1e-12)


def test_entropy_matches_scipy_per_column():
  labels = np.stack([np.repeat([0, 1, 2, 3], [1, 2, 3, 4]), np.repeat([5, 9], [5, 5])], axis=1)
  np.testing.assert_allclose(metrics.entropy(labels),
                             [stats.entropy([1, 2, 3, 4]), np.log(2)], rtol=1e-12)


def test_mutual_information_of_independent_columns_is_the_g_test_statistic_over_2n():
  # 2 N MI is the G statistic of the binned table, asymptotically chi^2((B - 1)^2) under
  # independence: mean (B - 1)^2 / (2 N), the plug-in bias, and sd sqrt(2) (B - 1) / (2 N).
  n, bins = 20_000, 10
  rng = np.random.default_rng(13)
  codes = rng.normal(size=(n, 4))
  factors = np.stack([rng.uniform(size=n), _pareto(rng, 1.0, n), rng.normal(size=n)], axis=1)
  mi = metrics.mutual_information(codes, factors, bins=bins)
  assert mi.shape == (4, 3)
  binned = lambda v: (stats.rankdata(v, method="min").astype(np.int64) - 1) * bins // n
  for d in range(4):
    for k in range(3):
      table = np.zeros((bins, bins))
      np.add.at(table, (binned(codes[:, d]), binned(factors[:, k])), 1)
      g = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")[0]
      np.testing.assert_allclose(2 * n * mi[d, k], g, rtol=1e-10)
  df = (bins - 1)**2
  assert stats.chi2.ppf(1e-4, df) < 2 * n * mi.min()
  assert 2 * n * mi.max() < stats.chi2.ppf(1 - 1e-4, df)
  assert abs(mi.mean() - df / (2 * n)) < 4 * np.sqrt(2 * df) / (2 * n) / np.sqrt(mi.size)


def test_mutual_information_of_a_column_with_itself_is_log_bins():
  # Equal-frequency bins of a continuous column with N divisible by B are exactly uniform.
  x = np.random.default_rng(14).standard_t(2, size=(4000, 1))
  mi = metrics.mutual_information(x, np.exp(x), bins=20)[0, 0]
  np.testing.assert_allclose(mi, np.log(20), rtol=1e-12)
  np.testing.assert_allclose(mi, metrics.entropy(metrics.discretize(x, 20))[0], rtol=1e-12)


# MIG.


def _factors(rng, n):
  """Four independent factors: uniform, three classes, Gaussian, and Pareto(1)."""
  return np.stack([rng.uniform(size=n), rng.integers(0, 3, n).astype(float),
                   rng.normal(size=n), _pareto(rng, 1.0, n)], axis=1)


def test_mig_is_near_1_for_permuted_factors_and_the_assignment_recovers_the_permutation():
  n, rng = 10_000, np.random.default_rng(15)
  factors = _factors(rng, n)
  perm = np.array([2, 0, 3, 1])  # code j copies factor perm[j]; two noise codes follow
  codes = np.concatenate([factors[:, perm] + 1e-6 * rng.normal(size=(n, 4)),
                          rng.normal(size=(n, 2))], axis=1)
  score, per_factor = metrics.mig(codes, factors)
  assert per_factor.shape == (4,)
  assert score > 0.9 and per_factor.min() > 0.9
  np.testing.assert_array_equal(
      metrics.factor_assignment(metrics.mutual_information(codes, factors)), np.argsort(perm))


def test_mig_is_near_0_for_codes_independent_of_the_factors():
  n, rng = 10_000, np.random.default_rng(16)
  score, per_factor = metrics.mig(rng.normal(size=(n, 6)), _factors(rng, n))
  assert score < 0.05 and per_factor.max() < 0.05


def test_mig_is_near_0_when_each_factor_is_copied_into_two_codes():
  n, rng = 10_000, np.random.default_rng(17)
  factors = _factors(rng, n)
  codes = np.concatenate([factors, factors], axis=1) + 1e-3 * rng.normal(size=(n, 8))
  score, per_factor = metrics.mig(codes, factors)
  assert score < 0.05 and per_factor.max() < 0.05
  # The gap vanishes although each factor is fully captured.
  mi = metrics.mutual_information(codes, factors)
  assert np.all(mi.max(axis=0) > 0.9 * metrics.entropy(metrics.discretize(factors, 20)))


def test_mig_is_unchanged_by_monotone_heavy_tailed_transforms_of_codes_and_factors():
  n, rng = 10_000, np.random.default_rng(18)
  factors = rng.normal(size=(n, 3))
  codes = np.concatenate([factors + 0.7 * rng.normal(size=(n, 3)), rng.normal(size=(n, 2))],
                         axis=1)
  score, per_factor = metrics.mig(codes, factors)
  assert 0.1 < score < 0.9  # a partial score, not a saturated one
  score_exp, per_factor_exp = metrics.mig(np.exp(2 * codes), np.exp(factors))
  assert abs(score_exp - score) <= 1e-12
  np.testing.assert_allclose(per_factor_exp, per_factor, rtol=0, atol=1e-12)


@pytest.mark.parametrize("codes, factors, message", [
    (np.ones((10, 1)), np.arange(10.0)[:, None], "at least 2"),
    (np.ones((10, 2)), np.ones((9, 1)), "10 examples and factors 9"),
    (np.random.default_rng(0).normal(size=(10, 2)),
     np.stack([np.arange(10.0), np.ones(10)], axis=1), r"factors \[1\] are constant"),
])
def test_mig_raises_on_bad_input(codes, factors, message):
  with pytest.raises(ValueError, match=message):
    metrics.mig(codes, factors)
