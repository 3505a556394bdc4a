r"""This trainer side by side with PyTorch on the same networks, interleaved A/B, medians.

    pip install -e '.[bench]'   # PyTorch, for this script only (never a runtime dependency)
    python benchmarks/peer_pytorch.py                    # the step and IWAE table
    python benchmarks/peer_pytorch.py --whole            # also the whole main command, A/B
    python benchmarks/peer_pytorch.py --write_docs       # put the table into docs/benchmarks.md

What is timed on our side is what the trainer runs: ``train.make_train_step`` and
``train.make_trainer_runner`` (the chunk runner of the training loop, with the chunk length the
trainer picks: one straight-line step per call for conv models on CPU, a ``lax.scan`` over the
epoch for the MLP), with the metrics fetched after every chunk as the loop does; for IWAE,
``vae.make_eval_fn`` and ``vae.evaluate`` over the 10k test digits. The peer is PyTorch eager
on the same network, loss and optimizer, the batch gathered from a preloaded tensor:

* conv CVAE: the MNIST report's tables 1-2 (Gaussian latent, 2-D, label as input channels
  and concatenated to z, ``ConvTranspose2d`` decoder), BCE summed per image;
* MLP Pareto CVAE: the main command's model (``--latent=pareto --conditional``: 784+10 -> 512
  -> 256 -> 16 tail indices, Pareto(alpha, 1) posterior drawn by inverse CDF, the decoder fed
  log z, closed-form KL to Pareto(1, 1), KL warm-up), Adam with global-norm clipping at 100;
* IWAE with k = 64 importance samples of that MLP model over the 10k test digits.

Each round runs every case once, in turn, so background load hits all alike; the table gives
medians over rounds (minimum in parentheses) and each ratio of medians, with the load average
before and after. ``--whole`` also times ``python -m pareto_vae_jax.main --latent=pareto
--conditional`` against ``python benchmarks/peer_pytorch.py --peer_main`` (the same job in
PyTorch: load MNIST, train 10 epochs, IWAE k = 64 on the test set), alternating.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

import docs_block  # benchmarks/, beside this script

START, END = docs_block.markers("peer_pytorch")


# ------------------------------------------------------------------------------------------------
# The peer: PyTorch eager.


def torch_models():
  """The PyTorch peers (imported here so that ``--help`` works without PyTorch)."""
  import torch
  from torch import nn
  import torch.nn.functional as F

  class ConvCVAE(nn.Module):
    """The report's tables 1-2 with the label as 10 extra input channels and beside z."""

    def __init__(self, latent_dim=2, classes=10):
      super().__init__()
      self.classes = classes
      self.encoder = nn.Sequential(
          nn.Conv2d(1 + classes, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
          nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(), nn.Flatten())
      self.mu, self.log_var = nn.Linear(2048, latent_dim), nn.Linear(2048, latent_dim)
      self.fc = nn.Linear(latent_dim + classes, 2048)
      self.decoder = nn.Sequential(
          nn.ConvTranspose2d(128, 64, 3, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1),
          nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))

    def loss(self, x, y, beta):
      c = F.one_hot(y, self.classes).float()
      h = self.encoder(torch.cat([x, c[:, :, None, None].expand(-1, -1, 28, 28)], 1))
      mu, log_var = self.mu(h), self.log_var(h)
      z = mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)
      logits = self.decoder(F.relu(self.fc(torch.cat([z, c], 1))).view(-1, 128, 4, 4))
      recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
      kl = -0.5 * torch.sum(1 + log_var - mu**2 - log_var.exp()) / len(x)
      return recon + beta * kl

  class MLPParetoCVAE(nn.Module):
    """The main command's model: Pareto(alpha(x, c), 1) posterior, Pareto(1, 1) prior."""

    def __init__(self, latent_dim=16, classes=10, hidden=(512, 256)):
      super().__init__()
      self.classes = classes
      self.encoder = nn.Sequential(nn.Linear(784 + classes, hidden[0]), nn.ReLU(),
                                   nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                                   nn.Linear(hidden[1], latent_dim))
      self.decoder = nn.Sequential(nn.Linear(latent_dim + classes, hidden[1]), nn.ReLU(),
                                   nn.Linear(hidden[1], hidden[0]), nn.ReLU(),
                                   nn.Linear(hidden[0], 784))

    def encode(self, x, c):
      return 1e-3 + F.softplus(self.encoder(torch.cat([x.flatten(1), c], 1)))

    def terms(self, x, y, num_samples=None):
      """(log p(x|z), log p(z), log q(z|x)) of draws z ~ q; with ``num_samples``: [k, B]."""
      c = F.one_hot(y, self.classes).float()
      alpha = self.encode(x, c)
      shape = alpha.shape if num_samples is None else (num_samples, *alpha.shape)
      # log z = E / alpha with E ~ Exp(1): the inverse CDF in log space (x_m = 1).
      log_z = -torch.log1p(-torch.rand(shape, device=alpha.device)) / alpha
      cc = c.expand(*log_z.shape[:-1], c.shape[-1])
      logits = self.decoder(torch.cat([log_z, cc], -1))
      log_lik = -F.binary_cross_entropy_with_logits(
          logits, x.flatten(1).expand_as(logits), reduction="none").sum(-1)
      log_p = (-2.0 * log_z).sum(-1)                                # Pareto(1, 1)
      log_q = (torch.log(alpha) - (alpha + 1) * log_z).sum(-1)      # Pareto(alpha, 1)
      return log_lik, log_p, log_q, alpha

    def loss(self, x, y, beta):
      log_lik, _, _, alpha = self.terms(x, y)
      t = -torch.log(alpha)  # KL(Pareto(a, 1) || Pareto(1, 1)) = expm1(t) - t, t = log(1 / a)
      kl = (torch.expm1(t) - t).sum(-1).mean()
      return -log_lik.mean() + beta * kl

    @torch.no_grad()
    def iwae(self, x, y, k):
      log_lik, log_p, log_q, _ = self.terms(x, y, k)
      return torch.logsumexp(log_lik + log_p - log_q, 0) - math.log(k)

  return ConvCVAE, MLPParetoCVAE


class TorchTrainer:
  """Adam 1e-3 (the conv model: the report's; the MLP: with the trainer's clip at norm 100)."""

  def __init__(self, model, data, *, clip, steps_per_epoch, warmup_epochs, device="cpu"):
    import torch
    self.torch, self.model, self.clip = torch, model.to(device), clip
    self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)
    self.x, self.y = (torch.from_numpy(a).to(device) for a in data)
    self.device = device
    self.warmup_steps = warmup_epochs * steps_per_epoch
    self.step = 0

  def run(self, indices: np.ndarray) -> float:
    for idx in self.torch.from_numpy(indices).to(self.device):
      i = idx
      beta = min(1.0, self.step / self.warmup_steps) if self.warmup_steps else 1.0
      self.opt.zero_grad(set_to_none=True)
      loss = self.model.loss(self.x[i], self.y[i], beta)
      loss.backward()
      if self.clip:
        self.torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
      self.opt.step()
      self.step += 1
    return float(loss.detach())  # waits for the device, as our side's fetch of the metrics


def torch_iwae(model, x, y, k, batch_size=500) -> float:
  import torch
  device = next(model.parameters()).device
  x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
  out = [model.iwae(x[s:s + batch_size], y[s:s + batch_size], k)
         for s in range(0, len(x), batch_size)]
  return float(torch.cat(out).mean())


# ------------------------------------------------------------------------------------------------
# Ours: the trainer's own functions.


def our_config(name: str):
  from pareto_vae_jax import config as config_lib
  config = config_lib.get_config()
  config.conditional = True
  if name.startswith("conv"):
    config.architecture, config.latent, config.latent_dim = "conv", "gaussian", 2
    config.warmup_epochs = 10.0  # the report's table 3
    config.upsampling = "transpose" if name == "conv_transpose" else "subpixel"
  return config


class OurTrainer:

  def __init__(self, config, ds):
    import jax
    from pareto_vae_jax import chunks, multihost, train, vae
    self.jax, self.config = jax, config
    model, tx = vae.VAESpec.from_config(config, ds), train.make_optimizer(config)
    self.model = model
    step = train.make_train_step(model, tx, config,
                                 steps_per_epoch=len(ds.train_x) // config.batch_size)
    self.state, self.run_chunk = train.make_trainer_runner(
        config, ds, step, train.init_state(model, tx, config), multihost.global_mesh())
    self.dispatch = chunks.steps_per_dispatch(config, len(ds.train_x) // config.batch_size)

  def run(self, indices: np.ndarray) -> float:
    for start in range(0, len(indices), self.dispatch):  # the trainer's chunks
      self.state, metrics = self.run_chunk(self.state, indices[start:start + self.dispatch])
      metrics = self.jax.device_get(metrics)  # as the loop does, every chunk
    return float(np.mean(metrics["loss"]))


def our_iwae(trainer: OurTrainer, ds, eval_fn) -> float:
  """The trainer's test evaluation (ELBO terms and the IWAE bound)."""
  import jax
  from pareto_vae_jax import vae
  result = vae.evaluate(eval_fn, jax.device_get(trainer.state.params), ds.test_x, ds.test_y,
                          500, jax.random.key(1))
  return result["iwae"]


# ------------------------------------------------------------------------------------------------
# Interleaved timing.


def timed(fn, *args) -> float:
  start = time.perf_counter()
  fn(*args)
  return time.perf_counter() - start


def load() -> str:
  return " ".join(f"{v:.2f}" for v in os.getloadavg())


def step_table(args) -> tuple[list[str], dict]:
  import torch
  from pareto_vae_jax import data as data_lib
  torch.set_num_threads(os.cpu_count())
  torch.manual_seed(0)
  torch.backends.cudnn.benchmark = True
  ds = data_lib.load_dataset("mnist")
  spe = len(ds.train_x) // 128
  rng = np.random.default_rng(0)
  order = rng.permutation(len(ds.train_x))[:spe * 128].reshape(spe, 128)
  conv_pt, mlp_pt = torch_models()
  x_nchw = np.ascontiguousarray(ds.train_x.transpose(0, 3, 1, 2))
  y = ds.train_y.astype(np.int64)
  cases = {  # name: (trainer, steps per round)
      "ours conv_transpose": (OurTrainer(our_config("conv_transpose"), ds), args.conv_steps),
      "ours conv_subpixel": (OurTrainer(our_config("conv_subpixel"), ds), args.conv_steps),
      "torch conv": (TorchTrainer(conv_pt(), (x_nchw, y), clip=0, steps_per_epoch=spe,
                                  warmup_epochs=10, device=args.device), args.conv_steps),
      "ours mlp": (OurTrainer(our_config("mlp"), ds), spe),
      "torch mlp": (TorchTrainer(mlp_pt(), (x_nchw, y), clip=100.0, steps_per_epoch=spe,
                                 warmup_epochs=1, device=args.device), spe),
  }
  times = {name: [] for name in cases}
  times["ours iwae"], times["torch iwae"] = [], []
  before = load()
  for name, (trainer, n) in cases.items():  # compile / warm up, untimed
    trainer.run(order[:n])
  test_x_nchw = np.ascontiguousarray(ds.test_x.transpose(0, 3, 1, 2))
  ours_mlp, torch_mlp = cases["ours mlp"][0], cases["torch mlp"][0]
  from pareto_vae_jax import vae
  eval_fn = vae.make_eval_fn(ours_mlp.model, args.iwae_k)  # as the trainer
  our_iwae(ours_mlp, ds, eval_fn)  # compiles, untimed
  for r in range(args.rounds):
    for name, (trainer, n) in cases.items():
      start = (r * n) % (spe - n + 1)
      times[name].append(timed(trainer.run, order[start:start + n]) / n)
    times["ours iwae"].append(timed(our_iwae, ours_mlp, ds, eval_fn))
    times["torch iwae"].append(timed(torch_iwae, torch_mlp.model, test_x_nchw,
                                     ds.test_y.astype(np.int64), args.iwae_k))
    print(f"round {r + 1}/{args.rounds} done, load {load()}", flush=True)
  after = load()

  def cell(name, scale):
    v = np.asarray(times[name]) * scale
    return f"{np.median(v):.3g} ({v.min():.3g})"

  med = {k: float(np.median(v)) for k, v in times.items()}
  rows = [
      "| what | ours | PyTorch eager | ours / PyTorch |",
      "|---|---:|---:|---:|",
      f"| conv CVAE step, ConvTranspose decoder (table 2), ms | {cell('ours conv_transpose', 1e3)}"
      f" | {cell('torch conv', 1e3)} | {med['ours conv_transpose'] / med['torch conv']:.2f} |",
      f"| conv CVAE step, sub-pixel decoder, ms | {cell('ours conv_subpixel', 1e3)}"
      f" | {cell('torch conv', 1e3)} (ConvTranspose) "
      f"| {med['ours conv_subpixel'] / med['torch conv']:.2f} |",
      f"| MLP Pareto CVAE step (main command), ms | {cell('ours mlp', 1e3)}"
      f" | {cell('torch mlp', 1e3)} | {med['ours mlp'] / med['torch mlp']:.2f} |",
      f"| IWAE k={args.iwae_k}, 10k test digits, s | {cell('ours iwae', 1)}"
      f" | {cell('torch iwae', 1)} | {med['ours iwae'] / med['torch iwae']:.2f} |",
  ]
  info = {"before": before, "after": after, "conv_epoch_s": med["ours conv_transpose"] * spe,
          "conv_subpixel_epoch_s": med["ours conv_subpixel"] * spe, "torch": torch.__version__}
  return rows, info


def whole_table(args) -> list[str]:
  """``python -m pareto_vae_jax.main`` against the PyTorch script doing the same job, A/B."""
  commands = {
      "ours": [sys.executable, "-m", "pareto_vae_jax.main", "--latent=pareto", "--conditional"],
      "torch": [sys.executable, os.path.abspath(__file__), "--peer_main"],
  }
  times = {k: [] for k in commands}
  for r in range(args.whole_rounds):
    for name, cmd in commands.items():
      with tempfile.TemporaryDirectory() as workdir:
        extra = [f"--workdir={workdir}"] if name == "ours" else []
        start = time.perf_counter()
        subprocess.run(cmd + extra, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        times[name].append(time.perf_counter() - start)
      print(f"whole {name} run {r + 1}: {times[name][-1]:.1f} s, load {load()}", flush=True)
  a, b = np.median(times["ours"]), np.median(times["torch"])
  return [f"| the whole main command (10 epochs + IWAE k=64), s | {a:.1f} "
          f"({min(times['ours']):.1f}) | {b:.1f} ({min(times['torch']):.1f}) | {a / b:.2f} |"]


def peer_main() -> None:
  """The PyTorch script doing the main command's job: 10 epochs, then test IWAE (k = 64)."""
  import torch
  from pareto_vae_jax import data as data_lib
  torch.set_num_threads(os.cpu_count())
  torch.manual_seed(0)
  ds = data_lib.load_dataset("mnist")
  _, mlp_pt = torch_models()
  x = np.ascontiguousarray(ds.train_x.transpose(0, 3, 1, 2))
  spe = len(x) // 128
  trainer = TorchTrainer(mlp_pt(), (x, ds.train_y.astype(np.int64)), clip=100.0,
                         steps_per_epoch=spe, warmup_epochs=1)
  rng = np.random.default_rng(0)
  for epoch in range(10):
    loss = trainer.run(rng.permutation(len(x))[:spe * 128].reshape(spe, 128))
    print(f"epoch {epoch + 1} loss {loss:.3f}", flush=True)
  test_x = np.ascontiguousarray(ds.test_x.transpose(0, 3, 1, 2))
  print("test iwae", torch_iwae(trainer.model, test_x, ds.test_y.astype(np.int64), 64))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--rounds", type=int, default=7)
  parser.add_argument("--conv_steps", type=int, default=20, help="conv steps per round")
  parser.add_argument("--iwae_k", type=int, default=64)
  parser.add_argument("--whole", action="store_true", help="also time the whole main command")
  parser.add_argument("--whole_rounds", type=int, default=3)
  parser.add_argument("--write_docs", action="store_true")
  parser.add_argument("--device", default="cpu", help="PyTorch's device: cpu | cuda (JAX picks "
                      "its default backend)")
  parser.add_argument("--peer_main", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  # Both sides run as the main command does, with glibc keeping freed memory.
  from pareto_vae_jax.main import keep_freed_memory
  keep_freed_memory([sys.executable, os.path.abspath(__file__), *sys.argv[1:]])
  if args.peer_main:
    return peer_main()
  import jax
  rows, info = step_table(args)
  if args.whole:
    rows += whole_table(args)
  command = "python benchmarks/peer_pytorch.py" + (" --whole" if args.whole else "")
  text = "\n".join([
      START,
      f"Measured {datetime.datetime.now():%Y-%m-%d %H:%M} with `{command}`: jax {jax.__version__},"
      f" PyTorch {info['torch']} on {args.device}, JAX on {jax.devices()[0].device_kind}, "
      f"{platform.machine()}, "
      f"`os.cpu_count()` = {os.cpu_count()}, batch 128, {args.rounds} interleaved rounds; "
      f"median (minimum) per step; load average (1, 5, 15 min) {info['before']} before, "
      f"{info['after']} after.",
      "",
      *rows,
      "",
      f"An epoch of 468 conv CVAE steps at these medians: {info['conv_epoch_s']:.1f} s "
      f"(ConvTranspose), {info['conv_subpixel_epoch_s']:.1f} s (sub-pixel).",
      END])
  print(text)
  if args.write_docs:
    docs_block.write("peer_pytorch", text)


if __name__ == "__main__":
  main()
