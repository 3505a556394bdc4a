r"""Accelerator figures: MNIST epoch times, importance sampling with k = 5000, FLOP/s, bfloat16.

    python benchmarks/accelerator.py                  # on a machine with a GPU or TPU
    python benchmarks/accelerator.py --epochs 1 --is_k 50 --is_examples 1000   # a quick look

Everything timed is the trainer's own path: ``train.make_trainer_runner`` with the chunk the
trainer uses (the whole epoch as one compiled ``lax.scan`` off CPU) and the metrics fetched
after it, and ``vae.make_eval_fn`` / ``vae.evaluate`` for importance sampling. Per model:
one untimed epoch (compilation), then ``--epochs`` timed epochs, median. FLOPs per step are
XLA's ``cost_analysis`` of one train step compiled for the CPU (the loop's body),
times the steps per second, as a fraction of the device's dense peak (bfloat16 tensor cores;
float32 matrices run as TF32 on them under JAX's default precision).
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax import config as config_lib
from pareto_vae_jax import data as data_lib
from pareto_vae_jax import multihost
from pareto_vae_jax import train
from pareto_vae_jax import vae

# Dense peaks (no sparsity) from the vendors' data sheets, FLOP/s: bfloat16 and TF32 tensor.
PEAKS = {"H100": (989e12, 494e12), "H200": (989e12, 494e12), "A100": (312e12, 156e12)}


def model_config(name: str, dtype: str):
  config = config_lib.get_config()
  config.conditional, config.dtype = True, dtype
  if name != "mlp":  # the report's conv CVAE (tables 1-3)
    config.architecture, config.latent, config.latent_dim = "conv", "gaussian", 2
    config.upsampling = name.split("_")[1]
  return config


def epoch_seconds(config, ds, epochs: int):
  """(median seconds per epoch, FLOPs per step, final training loss, trained state)."""
  spe = len(ds.train_x) // config.batch_size
  model, tx = vae.VAESpec.from_config(config, ds), train.make_optimizer(config)
  step = train.make_train_step(model, tx, config, steps_per_epoch=spe)
  state = train.init_state(model, tx, config)
  idx = jnp.arange(config.batch_size)
  batch = {"x": ds.train_x[:config.batch_size], "y": ds.train_y[:config.batch_size],
           "index": idx}
  # Counted on the CPU backend: a compiled GPU module hides cuDNN's convolutions in custom
  # calls that count no FLOPs.
  on_cpu = jax.device_put((state, batch, state.rng), jax.devices("cpu")[0])
  cost = jax.jit(step).lower(*on_cpu).compile().cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float(cost.get("flops", float("nan")))
  state, run_chunk = train.make_trainer_runner(config, ds, step, state, multihost.global_mesh())
  times = []
  for epoch in range(epochs + 1):
    order = data_lib.epoch_permutation(config.seed, epoch, len(ds.train_x))
    indices = order[:spe * config.batch_size].reshape(spe, -1)
    start = time.perf_counter()
    state, metrics = run_chunk(state, indices)
    metrics = jax.device_get(metrics)
    if epoch:  # the first epoch compiles
      times.append(time.perf_counter() - start)
  return statistics.median(times), flops, float(np.mean(metrics["loss"])), state


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--is_k", type=int, default=5000)
  parser.add_argument("--is_examples", type=int, default=10000)
  parser.add_argument("--is_batch", type=int, default=100)
  parser.add_argument("--models", default="mlp,conv_transpose,conv_subpixel")
  parser.add_argument("--dtypes", default="float32,bfloat16")
  args = parser.parse_args()
  device = jax.devices()[0]
  kind = device.device_kind
  peak = next((v for k, v in PEAKS.items() if k in kind), (float("nan"), float("nan")))
  ds = data_lib.load_dataset("mnist")
  spe = len(ds.train_x) // 128
  print(f"jax {jax.__version__}, {jax.default_backend()}, {kind}, {jax.device_count()} "
        f"device(s); batch 128, {spe} steps per epoch; median of {args.epochs} epochs after "
        "one that compiles.\n")
  print("| model | compute dtype | s / epoch | ms / step | GFLOP / step | TFLOP/s | "
        "of bf16 peak | of TF32 peak | train loss after |")
  print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
  mlp_state = None
  for name in args.models.split(","):
    for dtype in args.dtypes.split(","):
      seconds, flops, loss, state = epoch_seconds(model_config(name, dtype), ds, args.epochs)
      if name == "mlp" and dtype == "float32":
        mlp_state = state  # for importance sampling below
      rate = flops * spe / seconds
      print(f"| {name} | {dtype} | {seconds:.3f} | {1e3 * seconds / spe:.3f} | {flops / 1e9:.3f}"
            f" | {rate / 1e12:.2f} | {rate / peak[0]:.2%} | {rate / peak[1]:.2%} | {loss:.2f} |",
            flush=True)

  # Importance sampling with k draws per test digit, the MLP Pareto CVAE trained above.
  config = model_config("mlp", "float32")
  model = vae.VAESpec.from_config(config, ds)
  eval_fn = vae.make_eval_fn(model, args.is_k)
  params = mlp_state.params
  x, y = ds.test_x[:args.is_examples], ds.test_y[:args.is_examples]
  key = jax.random.key(1)
  vae.evaluate(eval_fn, params, x[:args.is_batch], y[:args.is_batch], args.is_batch, key)
  start = time.perf_counter()
  result = vae.evaluate(eval_fn, params, x, y, args.is_batch, key)
  seconds = time.perf_counter() - start
  print(f"\nImportance sampling, k = {args.is_k}, {len(x)} test digits in batches of "
        f"{args.is_batch}: {seconds:.2f} s (compiled before timing); log-likelihood bound "
        f"{result['iwae']:.2f} +- {result['iwae_stderr']:.2f} nats per digit after "
        f"{args.epochs + 1} epochs (BCE over [0, 1] intensities: not a normalized likelihood).")


if __name__ == "__main__":
  main()
