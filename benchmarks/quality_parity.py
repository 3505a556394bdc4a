r"""Quality at equal budget: this trainer against a PyTorch reference on an identical VAE.

    pip install -e '.[bench]'
    python benchmarks/quality_parity.py                    # 3 seeds each, writes a table
    python benchmarks/quality_parity.py --write_docs       # into docs/benchmarks.md

The model is the one of PyTorch's well-known MNIST VAE example: 784-400-20 MLP, Gaussian
posterior from a mean and a log-variance layer, N(0, I) prior, Bernoulli decoder scored with
BCE summed over the [0, 1] intensities (not a normalized likelihood), Adam 1e-3, batch 128, no
KL warm-up, 10 epochs, one-sample test loss (BCE + KL) per digit on the 10k test digits. The
PyTorch side is written here from that description: PyTorch's default initialization, the
loss summed over the batch, every batch of the shuffled epoch (the last one partial). Our side
is ``train.train_and_evaluate`` with ``--latent=gaussian --config.hidden='(400,)'
--config.latent_dim=20 --config.warmup_epochs=0`` on the same MNIST arrays, once with the
default initialization and once with ``--config.weight_init=lecun_normal`` (Flax's default, which
was this trainer's until the comparison found the gap). Each row: mean over seeds, standard
error of that mean, and each seed's value.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import tempfile

import numpy as np

import docs_block  # benchmarks/, beside this script

START, END = docs_block.markers("quality_parity")


def torch_test_loss(seed: int, epochs: int) -> float:
  import torch
  from torch import nn
  import torch.nn.functional as F
  from pareto_vae_jax import data as data_lib

  torch.manual_seed(seed)
  torch.set_num_threads(os.cpu_count())
  ds = data_lib.load_dataset("mnist")
  train_x = torch.from_numpy(ds.train_x.reshape(len(ds.train_x), -1))
  test_x = torch.from_numpy(ds.test_x.reshape(len(ds.test_x), -1))

  class VAE(nn.Module):

    def __init__(self):
      super().__init__()
      self.hidden, self.mu, self.log_var = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(
          400, 20)
      self.decoder = nn.Sequential(nn.Linear(20, 400), nn.ReLU(), nn.Linear(400, 784))

    def loss(self, x):
      h = F.relu(self.hidden(x))
      mu, log_var = self.mu(h), self.log_var(h)
      z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
      bce = F.binary_cross_entropy(torch.sigmoid(self.decoder(z)), x, reduction="sum")
      return bce - 0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp())

  model = VAE()
  opt = torch.optim.Adam(model.parameters(), lr=1e-3)
  for _ in range(epochs):
    for batch in torch.randperm(len(train_x)).split(128):
      opt.zero_grad()
      model.loss(train_x[batch]).backward()
      opt.step()
  with torch.no_grad():
    return sum(float(model.loss(x)) for x in test_x.split(128)) / len(test_x)


def our_test_loss(seed: int, epochs: int, init: str) -> float:
  from pareto_vae_jax import config as config_lib
  from pareto_vae_jax import train
  config = config_lib.get_config()
  config.latent, config.hidden, config.latent_dim = "gaussian", (400,), 20
  config.warmup_epochs, config.num_epochs, config.seed, config.weight_init = 0.0, epochs, seed, init
  config.iwae_samples, config.summary_every_epochs = 1, 0
  with tempfile.TemporaryDirectory() as workdir:
    return -train.train_and_evaluate(config, workdir)["elbo"]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--epochs", type=int, default=10)
  parser.add_argument("--write_docs", action="store_true")
  args = parser.parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  runs = {
      "PyTorch reference": lambda s: torch_test_loss(s, args.epochs),
      "ours (default init: fan_in_uniform)": lambda s: our_test_loss(s, args.epochs,
                                                                     "fan_in_uniform"),
      "ours with `--config.weight_init=lecun_normal`": lambda s: our_test_loss(s, args.epochs,
                                                                        "lecun_normal"),
  }
  losses = {name: [] for name in runs}
  for seed in seeds:  # interleaved, so that load hits every row alike
    for name, run in runs.items():
      losses[name].append(run(seed))
      print(f"{name}, seed {seed}: {losses[name][-1]:.3f}", flush=True)
  reference = np.mean(losses["PyTorch reference"])
  rows = ["| implementation | test loss per digit (nats) | standard error | minus PyTorch's | "
          "per seed |", "|---|---:|---:|---:|---|"]
  for name, values in losses.items():
    v = np.asarray(values)
    stderr = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    rows.append(f"| {name} | {v.mean():.2f} | {stderr:.2f} | {v.mean() - reference:+.2f} | "
                + ", ".join(f"{x:.2f}" for x in v) + " |")
  text = "\n".join([
      START,
      f"Measured {datetime.datetime.now():%Y-%m-%d} with `python benchmarks/quality_parity.py`"
      f" ({args.epochs} epochs, seeds {args.seeds}; lower is better; BCE over [0, 1] "
      "intensities, not a normalized likelihood):", "", *rows, END])
  print(text)
  if args.write_docs:
    docs_block.write("quality_parity", text)


if __name__ == "__main__":
  main()
