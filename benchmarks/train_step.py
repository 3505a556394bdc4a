r"""Time per train step of the conv CVAE through the trainer's chunk runner: scanned or written out.

    python benchmarks/train_step.py

``train.make_chunk_runner`` runs a chunk of steps as a ``lax.scan`` (a while loop) or, with
``straight_line``, as the steps written out one after another. XLA:CPU runs convolutions
inside a while loop tens of times slower, so the trainer writes conv steps out on CPU, one step
per call (``chunks.uses_straight_line``, ``train.steps_per_dispatch``). This times both forms
over the same indices, interleaved (each round runs every form once), median ms per step.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax import config as config_lib
from pareto_vae_jax import chunks
from pareto_vae_jax import data as data_lib
from pareto_vae_jax import multihost
from pareto_vae_jax import train
from pareto_vae_jax import vae

ROUNDS = 5


def runner(ds, upsampling: str, straight_line: bool, steps: int):
  config = config_lib.get_config()
  config.conditional, config.architecture, config.upsampling = True, "conv", upsampling
  config.latent, config.latent_dim = "gaussian", 2  # the report's CVAE
  model, tx = vae.VAESpec.from_config(config, ds), train.make_optimizer(config)
  step = train.make_train_step(model, tx, config, steps_per_epoch=468)
  state = train.init_state(model, tx, config)
  run = train.make_chunk_runner(step, multihost.global_mesh(), straight_line=straight_line)
  data = {"x": jnp.asarray(ds.train_x), "y": jnp.asarray(ds.train_y)}
  indices = jnp.arange(steps * 128).reshape(steps, 128)
  state, metrics = run(state, data, indices)  # compiles
  jax.device_get(metrics)
  box = [state]

  def timed() -> float:
    start = time.perf_counter()
    box[0], metrics = run(box[0], data, indices)
    jax.device_get(metrics)
    return (time.perf_counter() - start) / steps

  return timed


if __name__ == "__main__":
  ds = data_lib.load_dataset("mnist")
  print(f"jax {jax.__version__}, backend {jax.default_backend()}, load average "
        f"{os.getloadavg()[0]:.2f}; conditional Gaussian conv CVAE (the report's), batch 128")
  forms = {(up, straight, steps): runner(ds, up, straight, steps)
           for up in ("transpose", "subpixel")
           for straight, steps in ((False, 1), (False, 5), (True, 1), (True, 5))}
  times = {k: [] for k in forms}
  for _ in range(ROUNDS):
    for k, timed in forms.items():
      times[k].append(timed())
  print(f"load average after: {os.getloadavg()[0]:.2f}\n")
  print("| decoder upsampling | chunk form | steps per call | ms / step (median of "
        f"{ROUNDS}) |\n|---|---|---:|---:|")
  for (up, straight, steps), v in times.items():
    form = "straight-line (the trainer on CPU)" if straight else "lax.scan"
    print(f"| {up} | {form} | {steps} | {1e3 * np.median(v):.1f} |")
