"""Outputs of a run: metrics as JSON lines, TensorBoard events and PNG image grids.

The image grids and latent histograms are computed by pure functions (``image_grids``,
``latent_histograms``) and written as PNGs at the end of a run (``write_images``) or as
TensorBoard images and histograms at any step (``write_tensorboard_summaries``).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from pareto_vae_jax import distributions as D
from pareto_vae_jax._xla_workaround import jit
from pareto_vae_jax.distributions import joint
from pareto_vae_jax import vae


def format_config(config, width: int = 100) -> str:
  """The config as ``field=value`` pairs in sorted order, wrapped to ``width`` columns."""
  import textwrap
  pairs = [
      f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}"
      for k, v in sorted(config.to_dict().items())
  ]
  return textwrap.fill(" ".join(pairs),
                       width,
                       initial_indent="config: ",
                       subsequent_indent="  ",
                       break_on_hyphens=False)


def _write_atomic(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` atomically: a reader, or a run killed at any point, sees the
  whole new file or the old one, never a torn one (a temporary file, then ``os.replace``)."""
  tmp = f"{path}.tmp-{os.getpid()}"
  try:
    with open(tmp, "w") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def write_json_atomic(path: str, value) -> None:
  """Writes ``value`` as indented JSON to ``path``, atomically (``_write_atomic``)."""
  _write_atomic(path, json.dumps(value, indent=2) + "\n")


def write_config(workdir: str, config) -> str:
  """Writes ``config.json`` into ``workdir`` (atomically: a whole file or the old one)."""
  path = os.path.join(workdir, "config.json")
  _write_atomic(path, config.to_json_best_effort(indent=2, sort_keys=True) + "\n")
  return path


class MetricWriter:
  """Appends ``{"step", "split", **metrics}`` to ``metrics.jsonl`` and to TensorBoard events.

  With ``resume_step`` (a trainer starting at that step), what was written for later steps is
  dropped first: it came from work lost with its checkpoint, which the trainer now redoes, so
  ``metrics.jsonl`` holds each epoch once (tests/test_resume.py). TensorBoard is told the same
  with ``purge_step``.
  """

  def __init__(self, workdir: str, *, resume_step: int | None = None):
    from tensorboardX import SummaryWriter  # pure Python: no TensorFlow needed
    path = os.path.join(workdir, "metrics.jsonl")
    purge_step = None
    if resume_step is not None:
      _drop_lines_after(path, resume_step)
      purge_step = resume_step + 1
    self._jsonl = open(path, "a")
    self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=purge_step)

  def write_scalars(self, step: int, scalars: dict[str, float], split: str) -> None:
    self._jsonl.write(json.dumps({"step": step, "split": split, **scalars}) + "\n")
    self._jsonl.flush()
    for name, value in scalars.items():
      self._tb.add_scalar(f"{split}/{name}", value, step)
    self._tb.flush()

  def write_image(self, step: int, tag: str, image: np.ndarray) -> None:
    """Writes an image with values in [0, 1] (clipped), ``(H, W)`` or ``(H, W, C)``, C in 1, 3, 4.

    Raises:
      ValueError: the image has another shape.
    """
    image = np.asarray(image, np.float32)
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (1, 3, 4))):
      raise ValueError(f"write_image('{tag}'): an image must be (H, W) or (H, W, C) with C in "
                       f"1, 3, 4; got shape {image.shape}.")
    # Rounded here: tensorboardX would truncate float pixels (0.999 * 255 -> 254).
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    self._tb.add_image(tag, pixels, step, dataformats="HW" if image.ndim == 2 else "HWC")

  def write_histogram(self, step: int, tag: str, values: np.ndarray) -> None:
    """Writes a histogram of ``values`` (any shape; flattened).

    Non-finite values are left out, with a warning (TensorBoard's histograms cannot hold
    them); if none is finite, nothing is written.
    """
    values = np.asarray(values, np.float64).ravel()
    finite = values[np.isfinite(values)]
    if finite.size < values.size:
      logging.warning("Histogram '%s' at step %d: %d of %d values are not finite; left out.", tag,
                      step, values.size - finite.size, values.size)
    if finite.size:
      self._tb.add_histogram(tag, finite, step)

  def write_hparams(self, hparams: dict, metrics: dict[str, float], split: str = "test") -> None:
    """Records ``hparams`` and the final ``metrics`` for TensorBoard's HParams tab.

    ``hparams`` holds numbers, strings and booleans (other values as their ``str``). The
    metrics' values are those written by ``write_scalars(step, metrics, split)``, which the
    tab reads from the same tags, ``<split>/<name>``; write them too.
    """
    from tensorboardX.summary import hparams as hparams_summaries
    values = {k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in hparams.items()}
    tags = {f"{split}/{name}": float(value) for name, value in metrics.items()}
    for summary in hparams_summaries(values, tags):  # experiment, session start, session end
      self._tb.file_writer.add_summary(summary)
    self._tb.flush()

  def flush(self) -> None:
    self._tb.flush()

  def close(self) -> None:
    self._jsonl.close()
    self._tb.close()


def _drop_lines_after(path: str, step: int) -> None:
  """Rewrites ``metrics.jsonl`` (atomically) without the lines of steps after ``step``, and
  without a line torn by a kill mid-write."""
  if not os.path.exists(path):
    return
  with open(path) as f:
    lines = f.readlines()
  kept = []
  for line in lines:
    try:
      if json.loads(line)["step"] <= step and line.endswith("\n"):
        kept.append(line)
    except (ValueError, KeyError, TypeError):
      pass  # torn or foreign: dropped
  if len(kept) < len(lines):
    logging.warning(
        "Dropping %d lines of %s written after step %d (or torn): the run resumes "
        "from its checkpoint at step %d and writes them again.",
        len(lines) - len(kept), path, step, step)
    _write_atomic(path, "".join(kept))


def tile(images: np.ndarray, rows: int, cols: int) -> np.ndarray:
  """(rows * cols, H, W[, C]) -> one (rows * H, cols * W) grid, (rows * H, cols * W, C) if C > 1."""
  images = np.asarray(images)
  if images.ndim == 4 and images.shape[-1] == 1:
    images = images[..., 0]
  h, w, channels = images.shape[1], images.shape[2], images.shape[3:]
  grid = images.reshape(rows, cols, h, w, *channels).swapaxes(1, 2)
  return grid.reshape(rows * h, cols * w, *channels)


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


def _to_pixels(out: jax.Array, spec: vae.VAESpec) -> np.ndarray:
  """The decoder's output as pixels: the likelihood's mean, clipped to [0, 1]."""
  return np.asarray(jnp.clip(vae.LIKELIHOODS[spec.likelihood].mean(spec, out), 0, 1))


@functools.cache
def _image_fn(spec: vae.VAESpec, seed: int) -> Callable:
  """(params, x, y, labels) -> (encoder inputs, reconstruction outputs, sample outputs).

  One jitted function per spec and seed (both hashable): ``write_tensorboard_summaries`` runs
  at every epoch end, and a new jit each time would trace and compile again.
  """

  def images(params, x, y, labels):
    key = jax.random.key(seed)
    n = x.shape[0]
    inputs = vae.encoder_input(spec, x, key, jnp.arange(n))
    q = vae.encode(spec, params, inputs, y)
    z, in_log = vae.draw(jax.random.split(key, n), q)
    recon = vae.decode(spec, params, vae.decoder_input(z, in_log, spec.decode_log), y)
    p = vae.prior(spec, params, labels, labels.shape[0])
    # Per-example draws; a mixture prior (vamp, mixture) picks a component for each.
    keys = jax.random.split(jax.random.fold_in(key, 1), labels.shape[0])
    z, in_log = vae.draw(keys, p)
    samples = vae.decode(spec, params, vae.decoder_input(z, in_log, spec.decode_log), labels)
    return inputs[..., :x.shape[-1]], recon, samples  # what the encoder saw: noisy if denoising

  return jit(images)


def image_grids(spec: vae.VAESpec, params, ds, seed: int) -> dict[str, np.ndarray]:
  """The image grids of a run, with values in [0, 1]; empty for non-image data.

  The draws depend on ``seed`` only, so grids from successive epochs differ by the parameters
  alone.

  Args:
    spec: the model.
    params: its parameters.
    ds: the dataset; the grids use its test split.
    seed: the run's seed.

  Returns:
    ``reconstructions``: ``(4 H, 10 W[, C])``, rows 1 and 3 the encoder inputs of the first 20
    test examples (noisy ones for a denoising run), rows 2 and 4 their reconstructions from
    one posterior draw (fewer rows and columns for a test split under 20 examples);
    ``samples``: ``(classes H, 10 W[, C])``, 10 prior draws per class, one row per class (one
    row for an unconditional model). ``C`` appears for multi-channel images only.
  """
  if len(ds.input_shape) != 3:
    return {}
  # 50 encoded although 20 are shown: the draws (split(key, 50)) of the earlier PNGs.
  n = min(50, len(ds.test_x))
  classes = spec.num_classes or 1
  x, recon, samples = _image_fn(spec, seed)(params, jnp.asarray(ds.test_x[:n]),
                                            jnp.asarray(ds.test_y[:n]),
                                            jnp.repeat(jnp.arange(classes), 10))
  x, recon = np.asarray(x), _to_pixels(recon, spec)
  cols = min(10, n)
  pairs = min(2, n // cols)
  rows = [a[i * cols:(i + 1) * cols] for i in range(pairs) for a in (x, recon)]
  return {
      "reconstructions": tile(np.clip(np.concatenate(rows), 0, 1), 2 * pairs, cols),
      "samples": tile(_to_pixels(samples, spec), classes, 10)
  }


@functools.cache
def _histogram_fn(spec: vae.VAESpec, seed: int) -> Callable:
  """(params, x, y) -> (posterior, one posterior draw and one prior draw per example)."""

  def draw(params, x, y):
    key = jax.random.fold_in(jax.random.key(seed), 2)
    n = x.shape[0]
    index = jnp.arange(n)
    x = vae.observed(spec, {"x": x, "index": index}, key)
    q = vae.encode(spec, params, vae.encoder_input(spec, x, key, index), y)
    p = vae.prior(spec, params, y, n)
    z_q, _ = vae.draw(jax.random.split(jax.random.fold_in(key, 1), n), q)
    z_p, _ = vae.draw(jax.random.split(jax.random.fold_in(key, 2), n), p)
    return q, z_q, z_p

  return jit(draw)


def latent_histograms(spec: vae.VAESpec,
                      params,
                      ds,
                      seed: int,
                      *,
                      num_examples: int = 512,
                      num_dims: int = 8) -> dict[str, np.ndarray]:
  """Values to histogram: the posterior's parameters and latent draws on fixed test examples.

  The first ``num_examples`` test examples are encoded as in evaluation (binarized, or
  corrupted for a denoising run), with draws that depend on ``seed`` only, so
  successive epochs differ by the parameters alone. Positive families are histogrammed as
  ``log z``, the space they are drawn in: their draws span orders of magnitude (a Pareto's can
  overflow float32 for a small tail index) and ``log z`` shows the weight of a tail.

  Args:
    spec: the model.
    params: its parameters.
    ds: the dataset; the values come from its test split.
    seed: the run's seed.
    num_examples: how many test examples (fewer if the test split is smaller).
    num_dims: the first dimensions that get a histogram of their own.

  Returns:
    tag -> values, with ``z`` read ``log_z`` for a positive family:
    ``posterior/<name>``: each parameter the encoder predicts, ``[N, D]`` (a parameter it does
    not predict, such as the shared Pareto scale, is constant and left out);
    ``latent/z``: one posterior draw per example, ``[N, D]``;
    ``latent/z_dim<d>``: the draws of dimension ``d``, ``[N]``, for ``d < num_dims``;
    ``prior/z``: one prior draw per example, with its label for a conditional model, ``[N, D]``.
  """
  n = min(num_examples, len(ds.test_x))
  q, z_q, z_p = jax.device_get(
      _histogram_fn(spec, seed)(params, jnp.asarray(ds.test_x[:n]), jnp.asarray(ds.test_y[:n])))
  if joint.is_joint(q):  # full covariance, flows: real draws; loc and scales per dimension
    z = "z"
    values = {f"posterior/{name}": np.asarray(v) for name, v in joint.per_dim_params(q).items()}
  else:
    z = "log_z" if D.family_info(spec.latent).rsample_log is not None else "z"
    not_predicted = set(dict(spec.fixed)) - set(dict(spec.posterior_lower_bounds))
    values = {
        f"posterior/{name}": np.asarray(v)
        for name, v in zip(q.param_names, q.params)
        if name not in not_predicted
    }
  values[f"latent/{z}"] = np.asarray(z_q)
  for d in range(min(num_dims, z_q.shape[-1])):
    values[f"latent/{z}_dim{d}"] = np.asarray(z_q[:, d])
  values[f"prior/{z}"] = np.asarray(z_p)
  return values


def write_images(workdir: str, spec: vae.VAESpec, params, ds, seed: int) -> None:
  """``reconstructions.png`` and ``samples.png`` (see ``image_grids``) into ``workdir``."""
  grids = image_grids(spec, params, ds, seed)
  if not grids:
    logging.info("No image grids for non-image data '%s'.", ds.name)
    return
  _save_png(os.path.join(workdir, "reconstructions.png"), grids["reconstructions"],
            "encoder inputs (rows 1, 3) and reconstructions (rows 2, 4)")
  title = ("prior samples, one row per class" if spec.conditional else "prior samples")
  _save_png(os.path.join(workdir, "samples.png"), grids["samples"], title)


def write_tensorboard_summaries(writer: MetricWriter, step: int, spec: vae.VAESpec, params, ds,
                                seed: int) -> None:
  """Writes the image grids and the latent histograms of the model at ``step`` to TensorBoard.

  Images (image data only): ``images/reconstructions`` and ``images/samples``, the grids of
  ``image_grids``. Histograms: the tags of ``latent_histograms`` (``posterior/<name>``,
  ``latent/z``, ``latent/z_dim<d>``, ``prior/z``; ``log_z`` for positive families).
  """
  for name, grid in image_grids(spec, params, ds, seed).items():
    writer.write_image(step, f"images/{name}", grid)
  for tag, values in latent_histograms(spec, params, ds, seed).items():
    writer.write_histogram(step, tag, values)
  writer.flush()
