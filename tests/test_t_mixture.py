"""Tests of the t_mixture dataset: t3VAE's 0.6 t_2(-2, 1) + 0.4 t_2(2, 1)."""

import time

import numpy as np
import pytest
from scipy import stats

from pareto_vae_jax import data


def mixture_cdf(x):
  weights = np.array(data.T_MIXTURE_COUNTS) / sum(data.T_MIXTURE_COUNTS)
  return sum(w * stats.t.cdf(x, df, loc=loc, scale=scale) for w, loc, scale, df in zip(
      weights, data.T_MIXTURE_LOC, data.T_MIXTURE_SCALE, data.T_MIXTURE_DF))


@pytest.fixture(scope="module")
def ds() -> data.Dataset:
  return data.load_dataset("t_mixture", seed=0)


def test_registered_and_shapes(ds):
  assert "t_mixture" in data.DATASETS
  assert ds.name == "t_mixture" and ds.input_shape == (1,) and ds.num_classes == 2
  assert ds.train_x.shape == (200_000, 1) and ds.test_x.shape == (200_000, 1)
  assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int32
  assert np.isfinite(ds.train_x).all() and np.isfinite(ds.test_x).all()


def test_parameters_are_t3vaes():
  np.testing.assert_array_equal(data.T_MIXTURE_LOC, [-2.0, 2.0])
  np.testing.assert_array_equal(data.T_MIXTURE_SCALE, [1.0, 1.0])
  np.testing.assert_array_equal(data.T_MIXTURE_DF, [2.0, 2.0])
  assert data.T_MIXTURE_COUNTS == (120_000, 80_000)


def test_train_matches_the_mixture_cdf(ds):
  result = stats.kstest(ds.train_x[:, 0], mixture_cdf)
  assert result.pvalue > 1e-3, result
  # A wrong mixture is rejected: the same components with the weights swapped.
  swapped = lambda x: (0.4 * stats.t.cdf(x, 2, loc=-2) + 0.6 * stats.t.cdf(x, 2, loc=2))
  assert stats.kstest(ds.train_x[:, 0], swapped).pvalue < 1e-6


def test_components_follow_their_labels(ds):
  for k, loc in enumerate(data.T_MIXTURE_LOC):
    x = ds.train_x[ds.train_y == k, 0]
    result = stats.kstest(x, stats.t(df=2, loc=loc, scale=1).cdf)
    assert result.pvalue > 1e-3, (k, result)


def test_class_proportions(ds):
  for y in (ds.train_y, ds.test_y):
    np.testing.assert_array_equal(np.bincount(y), [120_000, 80_000])
    # Shuffled: both classes in the first thousand, in about the right proportion.
    assert 0.5 < np.mean(y[:1000] == 0) < 0.7


def test_train_and_test_differ_and_seeds_repeat(ds):
  assert not np.array_equal(ds.train_x, ds.test_x)
  # Independent draws: only chance float32 collisions (~1e3 of 2e5 near the modes) are shared.
  assert len(np.intersect1d(ds.train_x[:, 0], ds.test_x[:, 0])) < 0.01 * len(ds.test_x)
  assert np.mean(ds.train_x == ds.test_x) < 1e-3
  assert stats.kstest(ds.test_x[:, 0], mixture_cdf).pvalue > 1e-3
  again = data.load_dataset("t_mixture", seed=0)
  np.testing.assert_array_equal(again.train_x, ds.train_x)
  np.testing.assert_array_equal(again.test_y, ds.test_y)
  other = data.load_dataset("t_mixture", seed=1)
  assert not np.array_equal(other.train_x, ds.train_x)


def test_generation_is_fast():
  start = time.perf_counter()
  data.load_dataset("t_mixture", seed=5)
  assert time.perf_counter() - start < 1.0


# ----------------------------------------------------------------- the bivariate mixture


@pytest.fixture(scope="module")
def ds2() -> data.Dataset:
  return data.load_dataset("t_mixture2d", seed=0)


def test_bivariate_registered_shapes_and_counts(ds2):
  assert "t_mixture2d" in data.DATASETS
  assert ds2.input_shape == (2,) and ds2.num_classes == 2
  assert ds2.train_x.shape == (200_000, 2) and ds2.train_x.dtype == np.float32
  for y in (ds2.train_y, ds2.test_y):
    np.testing.assert_array_equal(np.bincount(y), [120_000, 80_000])
  assert not np.array_equal(ds2.train_x, ds2.test_x)
  np.testing.assert_array_equal(data.load_dataset("t_mixture2d", seed=0).train_x, ds2.train_x)


def test_bivariate_marginals_are_the_univariate_mixture(ds2):
  for i in range(2):
    assert stats.kstest(ds2.train_x[:, i], mixture_cdf).pvalue > 1e-3, i


def test_bivariate_components_are_bivariate_t_by_their_mahalanobis_radius(ds2):
  """For x ~ t_nu(mu, S) in d dimensions, (x - mu)' S^-1 (x - mu) / d ~ F(d, nu) (scipy)."""
  for k in range(2):
    x = ds2.train_x[ds2.train_y == k].astype(np.float64) - data.T_MIXTURE2D_LOC[k]
    r = np.einsum("ni,ij,nj->n", x, np.linalg.inv(data.T_MIXTURE2D_SCALE[k]), x) / 2
    assert stats.kstest(r, stats.f(2, data.T_MIXTURE2D_DF[k]).cdf).pvalue > 1e-3, k
    # The dependence is the scale matrix's: the sign of the correlation of the signs.
    sign = np.mean(np.sign(x[:, 0]) * np.sign(x[:, 1]))
    assert np.sign(sign) == np.sign(data.T_MIXTURE2D_SCALE[k, 0, 1]) and abs(sign) > 0.2
    # The swapped scale matrix is rejected.
    wrong = np.einsum("ni,ij,nj->n", x, np.linalg.inv(data.T_MIXTURE2D_SCALE[1 - k]), x) / 2
    assert stats.kstest(wrong, stats.f(2, data.T_MIXTURE2D_DF[k]).cdf).pvalue < 1e-6, k
