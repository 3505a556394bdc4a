"""A trained VAE loaded from its workdir: encode, decode, reconstruct, sample, ELBO and IWAE.

    import pareto_vae_jax as pvj
    vae = pvj.load("runs/mnist-pareto-cvae-learned-seed0")
    q = vae.encode(x, y)                      # the posterior: a distribution of the registry
    pvj.mean(q)                               # its pure functions apply (here E[z | x])
    images = vae.sample(jax.random.key(0), 10, labels=jnp.arange(10))
    nll = -vae.iwae(x, y, k=1000).mean()

Everything the model needs comes from the checkpoint (the config, the input shape and the
number of classes are saved beside the parameters), so the training data need not be
installed; checkpoints written before that was saved read the shapes from the dataset.
Images are the means of p(x | z): probabilities for a Bernoulli likelihood, else the decoder's
output.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from pareto_vae_jax import checkpoint as ckpt_lib
from pareto_vae_jax import data as data_lib
from pareto_vae_jax import distributions as D
from pareto_vae_jax import train
from pareto_vae_jax import vae as vae_lib
from pareto_vae_jax._xla_workaround import jit
from pareto_vae_jax.distributions import joint

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class TrainedVAE:
  """A trained model: its spec, parameters and the config it was trained with.

  Attributes:
    spec: what the model computes (``vae.VAESpec``).
    params: its parameters (host arrays).
    config: the run's config.
    step: the training step of the checkpoint.
    workdir: where it was loaded from.
  """

  spec: vae_lib.VAESpec
  params: Any
  config: ml_collections.ConfigDict
  step: int
  workdir: str

  def _labels(self, y, n: int) -> Array | None:
    if not self.spec.conditional:
      return None
    if y is None:
      raise ValueError(f"This is a conditional model over {self.spec.num_classes} classes: "
                       "pass the labels, e.g. encode(x, y).")
    y = jnp.asarray(y, jnp.int32)
    if y.shape != (n,):
      raise ValueError(f"Expected {n} labels, one per example; got shape {y.shape}.")
    return y

  def _inputs(self, x) -> Array:
    x = jnp.asarray(x, jnp.float32)
    if x.shape[1:] != self.spec.input_shape:
      raise ValueError(f"Expected inputs of shape (N, {', '.join(map(str, self.spec.input_shape))})"
                       f"; got {x.shape}.")
    return x

  def encode(self, x, y=None):
    """The posterior q(z | x[, y]): a distribution of the registry, batched over ``x``."""
    x = self._inputs(x)
    return _encode_fn(self.spec)(self.params, x, self._labels(y, len(x)))

  def decode(self, z, y=None) -> Array:
    """The means of p(x | z[, y]) for codes ``z`` ``[N, latent_dim]`` in the latent's space."""
    z = jnp.asarray(z, jnp.float32)
    return _decode_fn(self.spec)(self.params, z, self._labels(y, len(z)))

  def reconstruct(self, x, y=None, *, key: Array | None = None) -> Array:
    """Decodes one posterior draw per example (``key``: default, the run's seed)."""
    x = self._inputs(x)
    key = jax.random.key(self.config.seed) if key is None else key
    return _reconstruct_fn(self.spec)(self.params, x, self._labels(y, len(x)), key)

  def sample(self, key: Array, n: int, labels=None) -> Array:
    """``n`` draws from the prior (under ``labels``, one per draw, for a CVAE), decoded."""
    return _sample_fn(self.spec, n)(self.params, key, self._labels(labels, n))

  def elbo(self, x, y=None, *, key: Array | None = None, batch_size: int = 500) -> np.ndarray:
    """Per-example ELBO (nats; the trainer's key by default, so its mean is the run's figure)."""
    return self._eval(x, y, 1, key, batch_size)["elbo"]

  def iwae(self,
           x,
           y=None,
           k: int = 64,
           *,
           key: Array | None = None,
           batch_size: int | None = None) -> np.ndarray:
    """Per-example IWAE bound with ``k`` importance samples (a lower bound on log p(x))."""
    batch_size = batch_size or max(1, min(500, 32768 // k))
    return self._eval(x, y, k, key, batch_size)["iwae"]

  def _eval(self, x, y, k: int, key, batch_size: int) -> dict[str, np.ndarray]:
    x = self._inputs(x)
    y = self._labels(y, len(x))
    key = vae_lib.eval_key(self.config.seed) if key is None else key
    return vae_lib.per_example(vae_lib.make_eval_fn(self.spec, k), self.params, x, y, batch_size,
                               key)


def _means(spec: vae_lib.VAESpec, out: Array) -> Array:
  return vae_lib.LIKELIHOODS[spec.likelihood].mean(spec, out)


@functools.cache
def _encode_fn(spec):
  return jit(functools.partial(vae_lib.encode, spec))


@functools.cache
def _decode_fn(spec):

  def decode(params, z, y):
    positive = not joint.is_joint_family(spec.latent) and (D.family_info(spec.latent).rsample_log
                                                           is not None)
    z_in = jnp.log(z) if positive and spec.decode_log else z
    return _means(spec, vae_lib.decode(spec, params, z_in, y))

  return jit(decode)


@functools.cache
def _reconstruct_fn(spec):

  def reconstruct(params, x, y, key):
    q = vae_lib.encode(spec, params, x, y)
    z, in_log = vae_lib.draw(jax.random.split(key, x.shape[0]), q)
    z_in = vae_lib.decoder_input(z, in_log, spec.decode_log)
    return _means(spec, vae_lib.decode(spec, params, z_in, y))

  return jit(reconstruct)


@functools.cache
def _sample_fn(spec, n: int):

  def sample(params, key, labels):
    p = vae_lib.prior(spec, params, labels, n)
    z, in_log = vae_lib.draw(jax.random.split(key, n), p)
    z_in = vae_lib.decoder_input(z, in_log, spec.decode_log)
    return _means(spec, vae_lib.decode(spec, params, z_in, labels))

  return jit(sample)


def load(workdir: str) -> TrainedVAE:
  """The model of the newest readable checkpoint in ``workdir``.

  Raises:
    FileNotFoundError: ``workdir`` holds no readable checkpoint (the message says how to
      train one).
  """
  directory = os.path.join(workdir, "checkpoints")
  missing = FileNotFoundError(
      f"No readable checkpoint in {directory}. Train one first, e.g. "
      f"`python -m pareto_vae_jax.main --latent=pareto --conditional --workdir={workdir}`.")
  if not os.path.isdir(directory):
    raise missing
  found = ckpt_lib.latest_meta(directory)
  if found is None:
    raise missing
  _, meta = found
  config = ml_collections.ConfigDict(meta["config"])
  spec = spec_of(config, meta)
  target = train.init_state(spec, train.make_optimizer(config, meta.get("steps_per_epoch")), config)
  restored = ckpt_lib.restore_latest(directory, target)
  if restored is None:
    raise missing
  state, _, step = restored
  return TrainedVAE(spec=spec,
                    params=jax.device_get(state.params),
                    config=config,
                    step=int(step),
                    workdir=workdir)


def spec_of(config, meta: dict) -> vae_lib.VAESpec:
  """The spec of a saved run: shapes from its metadata, or from its dataset (older runs)."""
  if "input_shape" in meta:
    return vae_lib.VAESpec.from_config(config,
                                       input_shape=tuple(meta["input_shape"]),
                                       num_classes=meta["num_classes"])
  ds = data_lib.load_dataset(config.dataset, seed=config.seed, data_dir=config.get("data_dir", ""))
  return vae_lib.VAESpec.from_config(config, ds)
