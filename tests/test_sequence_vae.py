"""The sequence VAE (the notes, section 4.1): its decoder against plain reference loops, its
masking, grouped free bits, and end-to-end runs on architectures and on a user's .npz file."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pareto_vae_jax import checks
from pareto_vae_jax import config as config_lib
from pareto_vae_jax import data as data_lib
from pareto_vae_jax import objectives
from pareto_vae_jax import sequence_eval
from pareto_vae_jax import sequences
from pareto_vae_jax import train
from pareto_vae_jax import vae

import tiny

HIDDEN = (16, 12)


@pytest.fixture(scope="module")
def ds():
  full = data_lib.load_dataset("architectures")
  return dataclasses.replace(full, train_x=full.train_x[:256], train_y=full.train_y[:256],
                             test_x=full.test_x[:64], test_y=full.test_y[:64])


def _config(**overrides):
  c = config_lib.get_config()
  fields = dict(dataset="architectures", architecture="bilstm", likelihood="sequence",
                latent="gaussian", latent_dim=4, hidden=HIDDEN, batch_size=32, num_epochs=1,
                iwae_samples=4, eval_batch_size=64, summary_every_epochs=0)
  for k, v in (fields | overrides).items():
    setattr(c, k, v)
  return c


def _spec(ds, **overrides):
  return checks.check_config(_config(**overrides), ds, 1)


# ------------------------------------------------------------------------------------------------
# The decoder against a plain numpy LSTM.


def _sigmoid(v):
  return 1 / (1 + np.exp(-v))


class _ReferenceDecoder:
  """The decoder of recurrent.py written as a plain loop over numpy arrays."""

  def __init__(self, params, feature="sigmoid"):
    p = jax.tree.map(np.asarray, params["params"]["decoder"])
    dense = sorted((k for k in p if k.startswith("Dense_")), key=lambda k: int(k.split("_")[1]))
    self.layers = [(p[k]["kernel"], p[k]["bias"]) for k in dense]
    self.kernel, self.bias = p["lstm"]["kernel"], p["lstm"]["bias"]
    self.out_kernel, self.out_bias = p["out_kernel"], p["out_bias"]
    self.width = self.kernel.shape[1] // 4
    self.feature = feature

  def start(self, z):
    h = z
    for kernel, bias in self.layers[:-1]:
      h = np.maximum(h @ kernel + bias, 0)
    start = h @ self.layers[-1][0] + self.layers[-1][1]
    d, w = start.shape[-1] - 2 * self.width, self.width
    return start[:d], start[d:d + w], start[d + w:]

  def step(self, h, c, inputs):
    gates = np.concatenate([inputs, h]) @ self.kernel + self.bias
    i, f, g, o = np.split(gates, 4)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    h = _sigmoid(o) * np.tanh(c)
    return h, c, h @ self.out_kernel + self.out_bias

  def teacher_forced(self, z, x):
    inputs, h, c = self.start(z)
    outs = []
    for t in range(len(x)):  # step t sees the true row t - 1
      h, c, out = self.step(h, c, inputs)
      outs.append(out)
      inputs = x[t]
    return np.stack(outs)

  def free_running(self, z, steps):
    inputs, h, c = self.start(z)
    num_types = len(inputs) - 1
    outs, ended = [], False
    for _ in range(steps):
      h, c, out = self.step(h, c, inputs)
      outs.append(np.zeros_like(out) if ended else out)
      kind = int(np.argmax(out[:num_types]))
      feature = _sigmoid(out[-1]) if self.feature == "sigmoid" else max(out[-1], 0.0)
      inputs = np.concatenate([np.eye(num_types)[kind], [feature]])
      ended = ended or kind == num_types - 1
    return np.stack(outs)


def test_teacher_forcing_equals_step_by_step_decoding_given_the_true_prefix(ds):
  spec = _spec(ds)
  params = spec.init(jax.random.key(0))
  z = np.asarray(jax.random.normal(jax.random.key(1), (3, spec.latent_dim)))
  x = ds.test_x[:3]
  got = np.asarray(vae.decode(spec, params, jnp.asarray(z), None, target=jnp.asarray(x)))
  reference = _ReferenceDecoder(params)
  for i in range(3):
    np.testing.assert_allclose(got[i], reference.teacher_forced(z[i], x[i]), atol=2e-5)


@pytest.mark.parametrize("feature", ["sigmoid", "relu"])
def test_compiled_free_running_decoder_equals_a_python_loop(ds, feature):
  spec = _spec(ds, sequence_feature=feature)
  params = spec.init(jax.random.key(2))
  # Large codes, so that the untrained decoder's argmax varies along the sequences.
  z = 3 * np.asarray(jax.random.normal(jax.random.key(3), (6, spec.latent_dim)))
  got = np.asarray(vae.decode(spec, params, jnp.asarray(z)))
  reference = _ReferenceDecoder(params, feature)
  for i in range(6):
    np.testing.assert_allclose(got[i], reference.free_running(z[i], ds.input_shape[0]), atol=2e-5)


def test_free_running_rows_after_the_first_eos_are_padding(ds):
  spec = _spec(ds)
  params = spec.init(jax.random.key(4))
  out = np.asarray(vae.decode(spec, params, 3 * jax.random.normal(jax.random.key(5), (32, 4))))
  eos = ds.input_shape[-1] - 2
  for row in out:
    kinds = row[:, :-1].argmax(-1)
    first = np.flatnonzero(kinds == eos)
    if first.size:
      assert not row[first[0] + 1:].any()


# ------------------------------------------------------------------------------------------------
# Masking.


def _loss_and_grads(spec, params, x, y=None):
  batch = {"x": jnp.asarray(x), "index": jnp.arange(len(x))}
  if y is not None:
    batch["y"] = jnp.asarray(y)

  def loss(params):
    t = vae.terms(spec, params, batch, jax.random.key(7))
    return -jnp.mean(t["log_lik"]) + jnp.mean(jnp.sum(t["kl_dim"], -1))

  return jax.value_and_grad(loss)(params)


@pytest.mark.parametrize("architecture", ["lstm", "bilstm"])
def test_padding_beyond_a_sequence_changes_neither_loss_nor_gradients(ds, architecture):
  spec = _spec(ds, architecture=architecture)
  params = spec.init(jax.random.key(0))
  x = ds.test_x[:8]
  loss, grads = _loss_and_grads(spec, params, x)
  # Garbage in the feature column of the padding rows (their type columns stay zero) ...
  noisy = x.copy()
  padding = noisy[..., :-1].sum(-1) == 0
  assert padding.any()
  noisy[..., -1] = np.where(padding, 7.5, noisy[..., -1])
  # ... and 6 more padding rows.
  longer = np.concatenate([noisy, np.zeros((8, 6, x.shape[-1]), np.float32)], 1)
  longer_spec = dataclasses.replace(spec, input_shape=longer.shape[1:])
  for spec_b, x_b in ((spec, noisy), (longer_spec, longer)):
    loss_b, grads_b = _loss_and_grads(spec_b, params, x_b)
    np.testing.assert_allclose(loss_b, loss, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_b)):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_sequence_likelihood_against_a_hand_computation():
  # Two real steps and EOS over V = 3 types, then one padding row.
  x = np.array([[1, 0, 0, 0.25], [0, 1, 0, 1.0], [0, 0, 1, 0.0], [0, 0, 0, 0.0]], np.float32)
  out = np.random.default_rng(0).normal(size=x.shape).astype(np.float32)
  expected = 0.0
  for t in range(3):
    logits = out[t, :3]
    expected += logits[x[t, :3].argmax()] - np.log(np.exp(logits).sum())
    p = _sigmoid(out[t, 3])
    expected += x[t, 3] * np.log(p) + (1 - x[t, 3]) * np.log(1 - p)
  got = objectives.sequence_log_likelihood(out[None], x[None])
  np.testing.assert_allclose(got, [expected], rtol=1e-5)
  mean = 0.5
  expected_relu = expected - sum(
      x[t, 3] * np.log(_sigmoid(out[t, 3])) + (1 - x[t, 3]) * np.log(1 - _sigmoid(out[t, 3])) +
      0.5 * np.log(2 * np.pi * mean**2) + 0.5 * ((x[t, 3] - max(out[t, 3], 0)) / mean)**2
      for t in range(3))
  got = objectives.sequence_log_likelihood(out[None], x[None], feature="relu", scale=mean)
  np.testing.assert_allclose(got, [expected_relu], rtol=1e-5)


def test_every_parameter_gets_a_gradient(ds):
  for latent in ("pareto",):  # the richest: learned conditional prior (the others: end to end)
    spec = _spec(ds, latent=latent, conditional=True, prior="learned")
    _, grads = _loss_and_grads(spec, spec.init(jax.random.key(0)), ds.test_x[:16], ds.test_y[:16])
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
      assert np.all(np.isfinite(g)) and np.abs(g).max() > 0, (latent, jax.tree_util.keystr(path))


# ------------------------------------------------------------------------------------------------
# Grouped free bits (eq. 14).


def test_grouped_free_bits_equal_per_dimension_free_bits_when_k_is_d():
  kl = jax.random.uniform(jax.random.key(0), (32, 6)) * 0.4
  np.testing.assert_allclose(objectives.free_bits(kl, bits=0.1, groups=6),
                             objectives.free_bits(kl, bits=0.1), rtol=1e-6)


def test_grouped_free_bits_against_a_hand_computation():
  kl = np.array([[0.1, 0.3, 0.0, 2.0, 0.05], [0.3, 0.1, 0.2, 0.0, 0.05]], np.float32)
  # 5 dimensions in 2 groups: {0, 1, 2} and {3, 4}; batch means 0.2, 0.2, 0.1 | 1.0, 0.05.
  got = objectives.free_bits(kl, bits=0.6, groups=2)
  np.testing.assert_allclose(got, [0.6, 1.05], rtol=1e-6)  # 0.5 floored at 0.6; 1.05 kept
  grad = jax.grad(lambda k: objectives.free_bits(k, bits=0.6, groups=2).sum())(jnp.asarray(kl))
  np.testing.assert_allclose(grad, [[0, 0, 0, 0.5, 0.5]] * 2)  # the floored group: none
  with pytest.raises(ValueError, match="groups=6"):
    objectives.free_bits(kl, bits=0.1, groups=6)


# ------------------------------------------------------------------------------------------------
# End to end.


@pytest.fixture()
def small_architectures(monkeypatch, ds):
  tiny.patch_dataset(monkeypatch, ds)


# The diagonal Gaussian runs end to end in test_evaluate_reports_the_sequence_metrics_and_picture.
POSTERIORS = [("full_cov_gaussian", {}), ("planar", {"flow_layers": 2}),
              ("iaf", {"iaf_steps": 1, "iaf_hidden": 16}),
              ("pareto", {"conditional": True, "prior": "learned"})]


@pytest.mark.parametrize("latent,extra", POSTERIORS, ids=[p[0] for p in POSTERIORS])
def test_trains_and_reports_on_architectures(small_architectures, tmp_path, latent, extra):
  # Joint posteriors have one KL for the whole vector: one group.
  groups = 2 if latent in ("gaussian", "pareto") else 1
  # One direction: the same code paths as bilstm's (test_padding covers both), less to compile.
  results = train.train_and_evaluate(
      _config(latent=latent, architecture="lstm", free_bits=0.1, free_bits_groups=groups, **extra),
      str(tmp_path))
  assert results["finished"] and np.isfinite(results["elbo"]) and np.isfinite(results["iwae"])
  saved = json.loads((tmp_path / "test_metrics.json").read_text())
  for key in ("tf_type_accuracy", "fr_type_accuracy", "prior_validity"):
    assert 0 <= saved[key] <= 1, key
  assert (tmp_path / "sequences.png").stat().st_size > 0


def test_sequence_metrics_of_a_perfect_decoder_are_one(ds, monkeypatch):
  """The metrics' bookkeeping: a decoder that outputs the data itself scores 1."""
  spec = _spec(ds)
  eps = 1e-6

  def perfect(params, x, y, index, key):
    logits = jnp.where(x[..., :-1] > 0, 20.0, -20.0) * (x[..., :-1].sum(-1, keepdims=True) > 0)
    feature = jnp.log(jnp.clip(x[..., -1:], eps, 1 - eps)) - jnp.log1p(
        -jnp.clip(x[..., -1:], eps, 1 - eps))
    out = jnp.concatenate([logits, feature], -1)
    return out, out

  monkeypatch.setattr(sequence_eval, "_reconstruct_fn", lambda spec: perfect)
  monkeypatch.setattr(sequence_eval, "prior_sample_metrics", lambda *a: {})
  got = sequence_eval.sequence_metrics(spec, None, ds, 0)
  assert got["tf_type_accuracy"] == 1 and got["fr_type_accuracy"] == 1
  assert got["tf_exact_match"] == 1 and got["fr_exact_match"] == 1
  assert got["tf_feature_mae"] < 1e-4


def test_prior_metrics_count_valid_unique_and_novel_samples(ds, monkeypatch):
  train_seq = sequences.from_array(ds.train_x[0])
  novel = ([sequences.INPUT, sequences.DENSE, sequences.ACTIVATION, sequences.OUTPUT],
           [0.0, 1.0, 0.0, 1.0])
  assert sequences.is_valid(*novel)
  invalid = ([sequences.INPUT, sequences.OUTPUT, sequences.DENSE], [0.0, 0.0, 0.0])
  samples = [train_seq, train_seq, novel, invalid]
  monkeypatch.setattr(sequence_eval, "prior_samples", lambda *a: (samples, np.zeros(4)))
  got = sequence_eval.prior_sample_metrics(_spec(ds), None, ds, 0, 4)
  assert got["prior_validity"] == 0.75
  assert got["prior_uniqueness"] == 0.75  # 3 distinct of 4
  assert got["prior_novelty"] == pytest.approx(1 / 3)  # of the 3 valid ones, 1 is new


def _write_npz(path, n=96, seed=0, **replace):
  rng = np.random.default_rng(seed)
  lengths = rng.integers(2, 7, n)
  arrays = dict(types=rng.integers(0, 4, (n, 6)), features=rng.random((n, 6)) * 3 - 1,
                lengths=lengths, labels=rng.integers(0, 2, n))
  arrays.update(replace)
  np.savez(path, **arrays)
  return path


def _main(*args, timeout=300):
  return subprocess.run([sys.executable, "-m", "pareto_vae_jax.main", *args], capture_output=True,
                        text=True, timeout=timeout)


def test_main_trains_on_a_users_npz_sequences(tmp_path):
  path = _write_npz(tmp_path / "seqs.npz")
  workdir = tmp_path / "run"
  proc = _main(f"--dataset=npz:{path}", "--latent=gaussian", "--conditional",
               f"--workdir={workdir}", "--config.sequence_feature=relu",
               "--config.hidden=(16,)", "--config.latent_dim=2", "--config.num_epochs=1",
               "--config.batch_size=16", "--config.iwae_samples=2",
               "--config.summary_every_epochs=0")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "architecture=bilstm, likelihood=sequence" in proc.stdout
  saved = json.loads((workdir / "test_metrics.json").read_text())
  assert saved["finished"] and saved["prior_validity"] is None  # no grammar for user data
  assert 0 <= saved["tf_type_accuracy"] <= 1


@pytest.mark.parametrize("bad,needle", [
    (dict(lengths=np.full(96, 9)), "lengths"),
    (dict(types=np.full((96, 6), 1.5)), "types"),
])
def test_main_names_the_wrong_array_of_a_bad_npz_file(tmp_path, bad, needle):
  path = _write_npz(tmp_path / "bad.npz", **bad)
  proc = _main(f"--dataset=npz:{path}", f"--workdir={tmp_path / 'run'}")
  assert proc.returncode == 2, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error:") and needle in last, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr
  assert not (tmp_path / "run").exists()


def test_image_settings_on_sequences_are_refused_with_the_fix(ds):
  with pytest.raises(checks.ConfigError, match="architecture=lstm"):
    checks.check_config(_config(architecture="mlp", likelihood="bernoulli"), ds, 1)
  mnist_like = dataclasses.replace(ds, sequence=None, name="mnist")
  with pytest.raises(checks.ConfigError, match="for sequence data"):
    checks.check_config(_config(), mnist_like, 1)
  with pytest.raises(checks.ConfigError, match="free_bits_groups=9"):
    checks.check_config(_config(free_bits_groups=9), ds, 1)


def test_evaluate_reports_the_sequence_metrics_and_picture(small_architectures, tmp_path, ds,
                                                           monkeypatch):
  from pareto_vae_jax import evaluate  # pylint: disable=g-import-not-at-top
  results = train.train_and_evaluate(_config(architecture="lstm", free_bits=0.1,
                                             free_bits_groups=2), str(tmp_path))
  assert results["finished"] and np.isfinite(results["elbo"]) and np.isfinite(results["iwae"])
  monkeypatch.setattr(evaluate.data_lib, "load_dataset", lambda *a, **k: ds)
  results = evaluate.evaluate_workdir(str(tmp_path), iwae_samples=4)
  saved = json.loads((tmp_path / "test_metrics.json").read_text())
  for key in ("tf_type_accuracy", "prior_validity"):
    assert results[key] == saved[key]  # the same model, keys and draws as the training run's
  assert "tf_type_accuracy" in (tmp_path / "evaluation" / "evaluation.md").read_text()
  assert (tmp_path / "evaluation" / "sequences.png").exists()
