"""Tiny training configurations and datasets for the end-to-end, parallel and resume tests.

Sized so a whole run compiles and trains in seconds on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os

import numpy as np

from pareto_vae_jax import config as config_lib
from pareto_vae_jax import data as data_lib

# Overrides of the default config shared by every tiny run. synthetic_lognormal is positive and
# unbounded, so it takes the Gaussian likelihood (a Bernoulli one needs data in [0, 1]).
TINY = {
    "dataset": "synthetic_lognormal",
    "likelihood": "gaussian",
    "architecture": "mlp",
    "hidden": (32,),
    "latent_dim": 2,
    "batch_size": 64,
    "num_epochs": 2,
    "iwae_samples": 4,
    "eval_batch_size": 256,
}


def config(**overrides):
  """The default config with ``TINY`` and then ``overrides`` applied."""
  c = config_lib.get_config()
  for k, v in (TINY | overrides).items():
    setattr(c, k, v)
  return c


def cli_flags(**overrides) -> list[str]:
  """``--config.<field>=value`` flags for ``TINY | overrides`` (``dataset`` excluded)."""
  flags = []
  for k, v in (TINY | overrides).items():
    if k == "dataset":
      continue
    flags.append(f"--config.{k}={v}")  # a tuple as "(32,)", which the flag parses back
  return flags


def subset(ds: data_lib.Dataset, num_train: int, num_test: int) -> data_lib.Dataset:
  """The first examples of each split of ``ds``."""
  return dataclasses.replace(ds,
                             train_x=ds.train_x[:num_train],
                             train_y=ds.train_y[:num_train],
                             test_x=ds.test_x[:num_test],
                             test_y=ds.test_y[:num_test],
                             factors_train=None,
                             factors_test=None)


# Bound at import, before any test patches data_lib.load_dataset (patch_dataset): a dataset
# first loaded while a patch is active would otherwise be cached as the patched one.
_LOAD_DATASET = data_lib.load_dataset


@functools.lru_cache(maxsize=None)
def _loaded(name: str) -> data_lib.Dataset:
  return _LOAD_DATASET(name)


def small_dataset(name: str, num_train: int, num_test: int) -> data_lib.Dataset:
  """A subset of a real dataset (loaded once per process)."""
  return subset(_loaded(name), num_train, num_test)


def patch_dataset(monkeypatch, ds: data_lib.Dataset) -> None:
  """Makes ``train_and_evaluate`` train on ``ds`` whatever ``config.dataset`` names."""
  monkeypatch.setattr(data_lib, "load_dataset", lambda name, **kwargs: ds)


def mnist_like(num: int, *, seed: int = 0) -> np.ndarray:
  """Random images of MNIST's shape with pixels in [0, 1]."""
  return np.random.default_rng(seed).random((num, 28, 28, 1), dtype=np.float32)


def experiment(name: str):
  """``experiments/<name>.py`` loaded as a module (experiments/ is no package)."""
  path = os.path.join(os.path.dirname(__file__), os.pardir, "experiments", f"{name}.py")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
