"""Outputs of a run: metrics as JSON lines and TensorBoard events, and PNG image grids."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from pareto_vae_jax import models


class MetricWriter:
  """Appends ``{"step", "split", **metrics}`` to ``metrics.jsonl`` and to TensorBoard events."""

  def __init__(self, workdir: str):
    from tensorboardX import SummaryWriter  # pure Python: no TensorFlow needed
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write_scalars(self, step: int, scalars: dict[str, float], split: str) -> None:
    self._jsonl.write(json.dumps({"step": step, "split": split, **scalars}) + "\n")
    self._jsonl.flush()
    for name, value in scalars.items():
      self._tb.add_scalar(f"{split}/{name}", value, step)
    self._tb.flush()

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    self._tb.add_image(tag, image, step, dataformats="HW")

  def close(self) -> None:
    self._jsonl.close()
    self._tb.close()


def tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
  """(rows * cols, H, W[, 1]) -> one (rows * H, cols * W) grid."""
  images = images.reshape(rows, cols, *images.shape[1:3])
  return images.transpose(0, 2, 1, 3).reshape(rows * images.shape[2], cols * images.shape[3])


def _save_png(path: str, grid: np.ndarray, title: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(grid.shape[1] / 40, grid.shape[0] / 40 + 0.4), dpi=100)
  ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
  ax.set_title(title, fontsize=8)
  ax.axis("off")
  fig.savefig(path, bbox_inches="tight")
  plt.close(fig)


def _to_pixels(out: jax.Array, likelihood: str) -> np.ndarray:
  return np.asarray(jax.nn.sigmoid(out) if likelihood == "bernoulli" else jnp.clip(out, 0, 1))


def write_images(workdir: str, model: models.VAE, params, ds, config, use_log: bool) -> None:
  """Reconstructions of test digits, and 10 prior samples per class (or unconditional)."""
  if len(ds.input_shape) != 3:
    logging.info("No image grids for non-image data '%s'.", ds.name)
    return
  encode = jax.jit(lambda p, x, y: model.apply(p, x, y, method=models.VAE.encode))
  decode = jax.jit(lambda p, z, y: model.apply(p, z, y, method=models.VAE.decode))
  prior = jax.jit(lambda p, y: model.apply(p, y, y.shape[0], method=models.VAE.prior_dist))
  key = jax.random.key(config.seed)
  from pareto_vae_jax import train  # the corruption of denoising runs; train imports us
  x, y = jnp.asarray(ds.test_x[:50]), jnp.asarray(ds.test_y[:50])
  inputs = train.encoder_input(config, x, key, jnp.arange(50))
  q = encode(params, inputs, y)
  x = inputs[..., :x.shape[-1]]  # what the encoder saw (the noisy image when denoising)
  draw, in_log = train.sample_latent(jax.random.split(key, 50), q)
  z = train.decoder_input(draw, in_log, use_log)
  recon = _to_pixels(decode(params, z, y), config.likelihood)
  grid = tile(np.concatenate([np.asarray(x)[:10], recon[:10], np.asarray(x)[10:20],
                              recon[10:20]]), 4, 10)
  _save_png(os.path.join(workdir, "reconstructions.png"), grid,
            "encoder inputs (rows 1, 3) and reconstructions (rows 2, 4)")

  classes = ds.num_classes if config.conditional else 1
  labels = jnp.repeat(jnp.arange(classes), 10)
  p = prior(params, labels)
  # Per-example draws; a mixture prior (vamp, mixture) picks a component for each.
  draw, in_log = train.sample_latent(jax.random.split(jax.random.fold_in(key, 1), len(labels)), p)
  z = train.decoder_input(draw, in_log, use_log)
  samples = _to_pixels(decode(params, z, labels), config.likelihood)
  title = ("prior samples, one row per class" if config.conditional else "prior samples")
  _save_png(os.path.join(workdir, "samples.png"), tile(samples, classes, 10), title)
