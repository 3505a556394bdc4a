"""What a sequence VAE is judged by (the notes, section 4.1), and its picture.

``sequence_metrics`` scores a trained model on a sequence dataset (``data.Dataset.sequence``):

* reconstruction of the test sequences from one posterior draw each, teacher-forced
  (``tf_``: the decoder sees the true previous step) and free-running (``fr_``: it sees its own
  argmax): ``*_type_accuracy`` (fraction of steps, EOS included, whose type is right),
  ``*_exact_match`` (fraction of sequences whose every type, the EOS position and every
  feature (on its grid where the data has one, else within 0.05) are right) and
  ``tf_feature_mae`` (mean absolute feature error over the real steps);
* ``num_prior_samples`` draws from the prior (balanced over the labels for a CVAE), decoded
  free-running: ``prior_validity`` (fraction the dataset's grammar accepts; None without a
  grammar), ``prior_uniqueness`` (distinct sequences / draws) and ``prior_novelty`` (fraction
  of the valid draws not in the training set).

``write_sequence_picture`` draws test sequences with their free-running reconstructions,
prior samples and an interpolation between two encoded test sequences, as text.
"""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax import recurrent
from pareto_vae_jax import sequences
from pareto_vae_jax import vae
from pareto_vae_jax._xla_workaround import jit

Array = jax.Array

_FEATURE_TOLERANCE = 0.05  # exact match of continuous features (no grid)


@functools.cache
def _reconstruct_fn(spec: vae.VAESpec):
  """(params, x, y, index, key) -> (teacher-forced outputs, free-running outputs)."""

  def run(params, x, y, index, key):
    q = vae.encode(spec, params, x, y)
    z, in_log = vae.draw(vae.example_keys(key, index), q)
    z = vae.decoder_input(z, in_log, spec.decode_log)
    return (vae.decode(spec, params, z, y, target=x), vae.decode(spec, params, z, y))

  return jit(run)


@functools.cache
def _prior_fn(spec: vae.VAESpec):
  """(params, labels, key) -> free-running outputs of one prior draw per label."""

  def run(params, labels, key):
    n = labels.shape[0]
    p = vae.prior(spec, params, labels if spec.conditional else None, n)
    z, in_log = vae.draw(jax.random.split(key, n), p)
    return vae.decode(spec, params, vae.decoder_input(z, in_log, spec.decode_log),
                      labels if spec.conditional else None)

  return jit(run)


def _rows(out: np.ndarray, feature: str) -> np.ndarray:
  """Decoder outputs with the feature activated (type logits kept, zero rows kept zero)."""
  out = np.asarray(out, np.float32).copy()
  out[..., -1] = np.asarray(recurrent.activate_feature(jnp.asarray(out[..., -1]), feature))
  return out


def snap(info: sequences.SequenceInfo, types, features) -> tuple[int, ...]:
  """A decoded sequence as a hashable tuple: (type, feature level or rounded feature) pairs."""
  key = []
  for t, f in zip(types, features):
    if info.feature_levels is not None and 0 <= t < len(info.feature_levels):
      levels = info.feature_levels[t]
      key.append((int(t), int(round(min(max(f, 0.0), 1.0) * (levels - 1))) if levels > 1 else 0))
    else:
      key.append((int(t), round(float(f) / _FEATURE_TOLERANCE)))
  return tuple(key)


def quantized(info: sequences.SequenceInfo, types, features) -> list[float]:
  """Decoded features snapped to their grid (where the data has one, else as they are)."""
  if info.feature_levels is None:
    return [float(f) for f in features]
  out = []
  for t, f in zip(types, features):
    levels = info.feature_levels[t] if 0 <= t < len(info.feature_levels) else 1
    out.append(round(min(max(f, 0.0), 1.0) * (levels - 1)) / (levels - 1) if levels > 1 else 0.0)
  return out


def _same(info, types_a, feats_a, types_b, feats_b) -> bool:
  if list(types_a) != list(types_b):
    return False
  if info.feature_levels is not None:
    return snap(info, types_a, feats_a) == snap(info, types_b, feats_b)
  return bool(np.all(np.abs(np.asarray(feats_a) - np.asarray(feats_b)) <= _FEATURE_TOLERANCE))


def decode_all(outputs: np.ndarray, feature: str) -> list[tuple[list[int], list[float]]]:
  """Every example of decoder outputs as (types, features), stopped at its first EOS."""
  return [sequences.from_array(row) for row in _rows(outputs, feature)]


def sequence_metrics(spec: vae.VAESpec,
                     params,
                     ds,
                     seed: int,
                     *,
                     batch_size: int = 500,
                     num_prior_samples: int = 1000) -> dict[str, float | None]:
  """The reconstruction and generation metrics of the module docstring."""
  info = ds.sequence
  key = jax.random.fold_in(vae.eval_key(seed), 7)
  num_types = ds.input_shape[-1] - 1
  correct = steps = exact_tf = exact_fr = correct_fr = 0
  feature_error, feature_steps = 0.0, 0
  for start in range(0, len(ds.test_x), batch_size):
    idx = np.arange(start, min(start + batch_size, len(ds.test_x)))
    x = ds.test_x[idx]
    tf, fr = _reconstruct_fn(spec)(params, jnp.asarray(x), jnp.asarray(ds.test_y[idx]),
                                   jnp.asarray(idx), key)
    tf, fr = _rows(tf, spec.sequence_feature), _rows(fr, spec.sequence_feature)
    mask = x[..., :num_types].sum(-1) > 0
    true_type = x[..., :num_types].argmax(-1)
    real = mask & (true_type != num_types - 1)
    tf_ok = (tf[..., :num_types].argmax(-1) == true_type) & mask
    fr_ok = (fr[..., :num_types].argmax(-1) == true_type) & mask
    correct, correct_fr, steps = correct + tf_ok.sum(), correct_fr + fr_ok.sum(), steps + mask.sum()
    feature_error += float(np.abs(tf[..., -1] - x[..., -1])[real].sum())
    feature_steps += int(real.sum())
    for i in range(len(idx)):
      truth = sequences.from_array(x[i])
      n = int(mask[i].sum())
      tf_types = tf[i, :n, :num_types].argmax(-1)  # step by step, given the true prefix
      exact_tf += bool(
          np.all(tf_types == true_type[i, :n]) and
          _same(info, tf_types[:-1], tf[i, :n - 1, -1], truth[0], truth[1]))
      exact_fr += _same(info, *sequences.from_array(fr[i]), *truth)
  n_test = len(ds.test_x)
  result = {
      "tf_type_accuracy": float(correct / steps),
      "tf_exact_match": exact_tf / n_test,
      "tf_feature_mae": feature_error / max(feature_steps, 1),
      "fr_type_accuracy": float(correct_fr / steps),
      "fr_exact_match": exact_fr / n_test,
  }
  return result | prior_sample_metrics(spec, params, ds, seed, num_prior_samples)


def prior_samples(spec: vae.VAESpec, params, ds, seed: int,
                  num: int) -> tuple[list[tuple[list[int], list[float]]], np.ndarray]:
  """``num`` prior draws decoded free-running, and their labels (balanced over the classes)."""
  classes = ds.num_classes if spec.conditional else 1
  labels = np.arange(num) % classes
  key = jax.random.fold_in(vae.eval_key(seed), 8)
  out = _prior_fn(spec)(params, jnp.asarray(labels, jnp.int32), key)
  return decode_all(np.asarray(out), spec.sequence_feature), labels


def prior_sample_metrics(spec: vae.VAESpec, params, ds, seed: int,
                         num: int) -> dict[str, float | None]:
  info = ds.sequence
  samples, _ = prior_samples(spec, params, ds, seed, num)
  keys = [snap(info, t, f) for t, f in samples]
  valid = ([bool(info.checker(t, quantized(info, t, f))) for t, f in samples]
           if info.checker is not None else None)
  training = {snap(info, *sequences.from_array(x)) for x in ds.train_x}
  pool = [k for k, ok in zip(keys, valid or [True] * len(keys)) if ok]
  return {
      "prior_validity": None if valid is None else float(np.mean(valid)),
      "prior_uniqueness": len(set(keys)) / len(keys),
      "prior_novelty": (float(np.mean([k not in training for k in pool])) if pool else 0.0),
      "prior_samples": num,
  }


def _render(info, types, features) -> str:
  text = sequences.render(types, features, info)
  return text if len(text) <= 150 else text[:147] + "..."


def write_sequence_picture(path: str,
                           spec: vae.VAESpec,
                           params,
                           ds,
                           seed: int,
                           *,
                           num_examples: int = 4,
                           num_samples: int = 6,
                           interpolation_steps: int = 7) -> str:
  """Test sequences with their free-running reconstructions, prior samples and an
  interpolation between two test sequences' posterior draws, rendered as text, into ``path``."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  info = ds.sequence
  idx = np.arange(num_examples)
  x = ds.test_x[idx]
  key = jax.random.fold_in(vae.eval_key(seed), 7)
  _, fr = _reconstruct_fn(spec)(params, jnp.asarray(x), jnp.asarray(ds.test_y[idx]),
                                jnp.asarray(idx), key)
  lines = [("Test sequences and their free-running reconstructions", "title")]
  for i, row in enumerate(decode_all(np.asarray(fr), spec.sequence_feature)):
    truth = sequences.from_array(x[i])
    lines.append((f"  data:  {_render(info, *truth)}", "data"))
    lines.append((f"  recon: {_render(info, *row)}", "ok" if _same(info, *row, *truth) else "bad"))
  lines.append(("Prior samples" + (" (label in brackets)" if spec.conditional else ""), "title"))
  samples, labels = prior_samples(spec, params, ds, seed, num_samples)
  for (types, feats), label in zip(samples, labels):
    valid = info.checker(types, quantized(info, types, feats)) if info.checker else True
    tag = f"[{label}] " if spec.conditional else ""
    lines.append((f"  {tag}{_render(info, types, feats)}", "ok" if valid else "bad"))
  # Interpolation between the draws of test sequences 0 and 1, decoded under sequence 0's label.
  pair = ds.test_x[:2]
  y = jnp.asarray(ds.test_y[:2])
  q = vae.encode(spec, params, jnp.asarray(pair), y if spec.conditional else None)
  z, in_log = vae.draw(vae.example_keys(key, jnp.arange(2)), q)
  z = vae.decoder_input(z, in_log, spec.decode_log)
  t = jnp.linspace(0.0, 1.0, interpolation_steps)[:, None]
  path_z = (1 - t) * z[0] + t * z[1]
  labels = jnp.full((interpolation_steps,), y[0])
  out = jit(functools.partial(vae.decode, spec))(params, path_z,
                                                 labels if spec.conditional else None)
  lines.append(("Interpolation between test sequences 0 and 1", "title"))
  for step, (types, feats) in zip(np.asarray(t[:, 0]),
                                  decode_all(np.asarray(out), spec.sequence_feature)):
    lines.append((f"  t={step:.2f}: {_render(info, types, feats)}", "data"))
  colors = {"title": "black", "data": "#333333", "ok": "#1a7f37", "bad": "#b42318"}
  fig = plt.figure(figsize=(16, 0.28 * len(lines) + 0.6))
  for i, (text, kind) in enumerate(lines):
    fig.text(0.01,
             1 - (i + 1) / (len(lines) + 1),
             text,
             family="monospace",
             fontsize=8,
             color=colors[kind],
             weight="bold" if kind == "title" else "normal")
  fig.suptitle("green: valid / exact reconstruction; red: invalid / not exact",
               fontsize=8,
               x=0.01,
               ha="left")
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
