r"""Time of one train step of the MNIST VAE, inside a ``lax.scan`` versus dispatched one by one.

    python benchmarks/train_step.py

Why: XLA:CPU runs the conv model's step ~35x slower inside a while loop (what ``lax.scan``
lowers to) than as straight-line code, while for the MLP the scan removes per-step dispatch.
The trainer picks ``steps_per_dispatch`` from these numbers (docs/benchmarks.md).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from pareto_vae_jax import config as config_lib
from pareto_vae_jax import data as data_lib
from pareto_vae_jax import train

STEPS = 10


def time_per_step(architecture: str, upsampling: str, steps_per_call: int) -> float:
  config = config_lib.get_config()
  config.conditional, config.architecture, config.upsampling = True, architecture, upsampling
  ds = data_lib.load_dataset("mnist")
  model, tx = train.build_model(config, ds), train.make_optimizer(config)
  state = train.init_state(model, tx, ds, config)
  mesh = Mesh(np.array(jax.devices()), ("data",))
  run = train.make_chunk_runner(train.make_train_step(model, tx, config, steps_per_epoch=468), mesh)
  data = {"x": jnp.asarray(ds.train_x), "y": jnp.asarray(ds.train_y)}
  idx = jnp.arange(STEPS * config.batch_size).reshape(STEPS // steps_per_call, steps_per_call, -1)
  state, m = run(state, data, idx[0])  # compile
  jax.block_until_ready(m)
  start = time.perf_counter()
  for chunk in idx:
    state, m = run(state, data, chunk)
  jax.block_until_ready(m)
  return (time.perf_counter() - start) / STEPS


if __name__ == "__main__":
  print(f"jax {jax.__version__}, backend {jax.default_backend()}, {jax.device_count()} device(s)")
  print("| model | upsampling | steps per compiled call | ms / step |\n|---|---|---|---|")
  for arch, up in (("mlp", "subpixel"), ("conv", "subpixel"), ("conv", "transpose")):
    for per_call in (STEPS, 1):
      print(f"| {arch} | {up if arch == 'conv' else '-'} | {per_call} "
            f"| {1e3 * time_per_step(arch, up, per_call):.1f} |", flush=True)
