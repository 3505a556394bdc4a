r"""What an epoch in ~10 compiled chunks costs against one chunk: the trainer's own loop.

    python benchmarks/chunks.py [--rounds=7] [--epochs=2] [--write_docs]

The trainer runs an epoch as ``chunks_per_epoch`` calls (default 10) so that the progress line
and a pre-emption notice act inside an epoch; each call ends in a host sync (the loop reads the
chunk's metrics). This times ``train.fit`` itself, the quick start's MLP CVAE on MNIST, with
``chunks_per_epoch`` 1 and 10, interleaved (each round runs both, order alternating), and
reports the median seconds per epoch of the epoch lines' own timing (``steps_per_sec`` in
``metrics.jsonl``: the training steps, their syncs and the start of the epoch's checkpoint,
which is the same for both; not the compile or evaluation). Like ``python -m
pareto_vae_jax.main``, the script runs with glibc keeping freed memory. The machine's load is
printed.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

from pareto_vae_jax import main as main_lib  # noqa: E402  (the command's malloc setting)

if __name__ == "__main__":
  main_lib.keep_freed_memory([sys.executable, *sys.argv])

import jax  # noqa: E402

from pareto_vae_jax import config as config_lib  # noqa: E402
from pareto_vae_jax import data as data_lib  # noqa: E402
from pareto_vae_jax import chunks as chunks_lib  # noqa: E402
from pareto_vae_jax import train  # noqa: E402

import docs_block  # noqa: E402


def seconds_per_epoch(chunks: int, epochs: int) -> float:
  """Median seconds per epoch after the first (which compiles) of a fresh ``train.fit``."""
  config = config_lib.get_config()
  config.latent, config.conditional = "pareto", True
  config.num_epochs, config.chunks_per_epoch = epochs + 1, chunks
  config.summary_every_epochs = 0
  with tempfile.TemporaryDirectory() as workdir:
    train.fit(config, workdir)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      rates = [json.loads(line)["steps_per_sec"] for line in f]
  steps = 60_000 // config.batch_size
  return statistics.median(steps / r for r in rates[1:])


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--write_docs", action="store_true")
  args = parser.parse_args()
  data_lib.load_dataset("mnist")  # fail early without MNIST
  times = {1: [], 10: []}
  loads = []
  for r in range(args.rounds):
    for chunks in ((1, 10) if r % 2 == 0 else (10, 1)):
      times[chunks].append(seconds_per_epoch(chunks, args.epochs))
      loads.append(os.getloadavg()[0])
      print(f"round {r + 1} chunks_per_epoch={chunks:2d}: {times[chunks][-1]:.3f} s/epoch, "
            f"load {loads[-1]:.2f}", flush=True)
  one, ten = statistics.median(times[1]), statistics.median(times[10])
  device = jax.devices()[0].device_kind
  text = "\n".join([
      docs_block.markers(f"chunks-{jax.default_backend()}")[0],
      f"`python benchmarks/chunks.py --rounds={args.rounds} --epochs={args.epochs}`: {device} "
      f"({jax.default_backend()}), jax {jax.__version__}, load average "
      f"{min(loads):.2f}-{max(loads):.2f}; quick-start MLP CVAE, 468 steps per epoch, median "
      "seconds per epoch of training steps (epoch 1, which compiles, left out).",
      "",
      "| `chunks_per_epoch` | calls per epoch | s per epoch (median) | ratio to 1 |",
      "|---|---|---|---|",
      f"| 1 | 1 | {one:.3f} | 1.00 |",
      f"| 10 (default) | {468 // chunks_lib.chunk_length(468, 10)} | {ten:.3f} | {ten / one:.3f} |",
      docs_block.markers(f"chunks-{jax.default_backend()}")[1],
  ])
  print(text)
  if args.write_docs:
    docs_block.write(f"chunks-{jax.default_backend()}", text)


if __name__ == "__main__":
  main()
