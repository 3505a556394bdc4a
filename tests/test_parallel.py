"""One device, a sharded jit over a 4-device mesh, and pmap take the same step on one global batch.

conftest.py gives the process four host CPU devices. Every new state is compared whole: after a
first Adam step the parameters moved by about ``learning_rate * sign(gradient)`` whatever the
gradient's size, so the optimizer's moments (which hold the gradient itself) are what would
show a gradient that a parallel path averages wrongly.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from pareto_vae_jax import data as data_lib
from pareto_vae_jax import train
from pareto_vae_jax import vae

import tiny

NUM_DEVICES = 4
GLOBAL_BATCH = 64


def _mnist_shaped(num: int) -> data_lib.Dataset:
  x = tiny.mnist_like(num)
  y = np.random.default_rng(1).integers(0, 10, num).astype(np.int32)
  return data_lib.Dataset(train_x=x, train_y=y, test_x=x, test_y=y, num_classes=10,
                          input_shape=(28, 28, 1), name="mnist", source="random pixels")


# (dataset, config overrides, whether free bits is on). warmup_epochs=0: the first step has
# beta = 1, so the KL (and its free-bits floor) reaches the gradient.
VARIANTS = {
    "pareto-mlp": (lambda: tiny.small_dataset("synthetic_lognormal", 256, 64),
                   dict(latent="pareto", warmup_epochs=0.0), False),
    "gaussian-cvae-learned-prior-free-bits": (
        lambda: tiny.small_dataset("synthetic_lognormal", 256, 64),
        dict(latent="gaussian", conditional=True, prior="learned", latent_dim=4,
             warmup_epochs=0.0), True),
    # The conv model would add ~15 s of compilation on a 2-core CPU; the MLP sees the same pixels.
    "lognormal-binarized-pixels": (
        lambda: _mnist_shaped(256),
        dict(dataset="mnist", latent="lognormal", likelihood="bernoulli", binarize=True,
             conditional=True, warmup_epochs=0.0), False),
}


def _straddling_free_bits(model, config, params, batch, key) -> float:
  """A floor between two devices' batch-mean KLs of latent dimension 0.

  Then some devices' KL of that dimension is below the floor and some above, so clamping each
  device's mean before averaging over devices would give another loss than clamping the
  global mean, which is what free bits means for the global batch.
  """
  kl_dim = jax.jit(lambda *a: vae.terms(model, *a)["kl_dim"][:, 0])(params, batch, key)
  per_device = np.asarray(kl_dim).reshape(NUM_DEVICES, -1).mean(axis=1)
  lo, hi = per_device.min(), per_device.max()
  assert lo < hi
  return float((lo + hi) / 2)


def _key_data(tree):
  return jax.tree.map(lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(
      x.dtype, jax.dtypes.prng_key) else x, tree)


def _assert_trees_close(actual, desired, what, *, atol=1e-6):
  actual, desired = _key_data(actual), _key_data(desired)
  assert jax.tree.structure(actual) == jax.tree.structure(desired), what
  for (path, a), d in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(desired)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(d), rtol=1e-5, atol=atol,
                               err_msg=f"{what}: {jax.tree_util.keystr(path)}")


def _assert_states_close(actual, desired, what, *, learning_rate):
  # A first Adam step moves a parameter by lr * g / (|g| + eps): where |g| is near eps, a
  # rounding-level change of g (another summation order) moves it by a fraction of lr. The
  # moments, which hold g and g^2 themselves, get the tight tolerance.
  _assert_trees_close(actual.params, desired.params, what, atol=1e-2 * learning_rate)
  _assert_trees_close(actual.replace(params=None), desired.replace(params=None), what)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_one_device_sharded_jit_and_pmap_take_the_same_step(variant):
  assert jax.device_count() == NUM_DEVICES, "conftest.py should force 4 host CPU devices"
  make_ds, overrides, free_bits = VARIANTS[variant]
  ds = make_ds()
  config = tiny.config(**overrides)
  model, tx = vae.VAESpec.from_config(config, ds), train.make_optimizer(config)
  state = train.init_state(model, tx, config)
  steps_per_epoch = len(ds.train_x) // GLOBAL_BATCH
  # A shuffled global batch: the per-example keys fold in the data index, not the batch slot.
  idx = data_lib.epoch_permutation(config.seed, 0, len(ds.train_x))[:GLOBAL_BATCH]
  batch = {"x": jnp.asarray(ds.train_x[idx]), "y": jnp.asarray(ds.train_y[idx]),
           "index": jnp.asarray(idx)}
  if free_bits:
    config.free_bits = _straddling_free_bits(model, config, state.params, batch,
                                             jax.random.fold_in(state.rng, state.step))

  def make_step(**kwargs):
    return train.make_train_step(model, tx, config, steps_per_epoch=steps_per_epoch, **kwargs)

  # (a) One device.
  single_state, single_metrics = jax.jit(make_step())(state, batch, state.rng)

  # (b) The trainer's path: a scan over steps, the batch split over the mesh's "data" axis.
  mesh = Mesh(np.array(jax.devices()), ("data",))
  replicated = NamedSharding(mesh, P())
  run_chunk = train.make_chunk_runner(make_step(), mesh)
  sharded_state, sharded_metrics = run_chunk(
      # A copy: the runner donates its state, and device_put to a replicated sharding reuses
      # the device-0 buffers (even with may_alias=False), which donation would delete.
      jax.device_put(jax.tree.map(jnp.copy, state), replicated),
      jax.device_put({"x": ds.train_x, "y": ds.train_y}, replicated),
      jnp.asarray(idx[None]))
  sharded_metrics = jax.tree.map(lambda m: m[0], jax.device_get(sharded_metrics))

  # (c) pmap over a leading device axis; the state is replicated, the key shared.
  split = lambda a: a.reshape(NUM_DEVICES, -1, *a.shape[1:])
  stack = lambda a: jnp.stack([a] * NUM_DEVICES)
  pmapped = jax.pmap(make_step(axis_name="batch"), axis_name="batch", in_axes=(0, 0, None))
  # Fetched to the host before any indexing: ``a[d]`` on a pmap's output is itself a 4-device
  # program with an all-reduce, and a run of them dispatched back to back can deadlock
  # XLA:CPU's host devices. That was this test's CI crash: under load, gdb showed two threads
  # waiting at an all-reduce and two at a device's launch semaphore, until the rendezvous limit
  # aborted the process. The README's "Scaling out" has the measurements.
  pmap_state, pmap_metrics = jax.device_get(pmapped(
      jax.tree.map(stack, state), jax.tree.map(split, batch), state.rng))

  assert int(single_state.step) == 1
  lr = config.learning_rate
  _assert_states_close(sharded_state, single_state, "sharded jit state", learning_rate=lr)
  _assert_trees_close(sharded_metrics, single_metrics, "sharded jit metrics")
  for d in range(NUM_DEVICES):
    replica = lambda tree: jax.tree.map(lambda a: a[d], tree)
    _assert_states_close(replica(pmap_state), single_state, f"pmap state on device {d}",
                         learning_rate=lr)
    _assert_trees_close(replica(pmap_metrics), single_metrics, f"pmap metrics on device {d}")
