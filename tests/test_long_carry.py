"""experiments/long_carry.py: a run packed on one machine resumes on another bit for bit."""

import os
import tarfile

import jax
import numpy as np
import pytest

from pareto_vae_jax import train, trained

import tiny

long_carry = tiny.experiment("long_carry")


def _mtimes(root):
  return {p: os.stat(p).st_mtime_ns for p in map(str, root.rglob("*"))}


def test_a_packed_run_resumes_elsewhere_as_if_never_moved(tmp_path, monkeypatch, capsys):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))
  config = lambda epochs: tiny.config(num_epochs=epochs, lr_schedule="burda")
  here, there, once = tmp_path / "here" / "run", tmp_path / "there" / "run", tmp_path / "once"
  train.train_and_evaluate(config(1), str(here))
  train.train_and_evaluate(config(2), str(here))  # two checkpoints; only the newest travels
  assert len(long_carry.whole_steps(str(here))) == 2
  tar_path = str(tmp_path / "carry" / "run.tar")
  step = long_carry.pack(str(here), tar_path)
  assert step == 2 * (256 // 64)
  with tarfile.open(tar_path) as tar:
    steps = {n.split("/")[1] for n in tar.getnames() if n.startswith("checkpoints/")}
    assert steps == {str(step)}
    assert {"config.json", "metrics.jsonl", "test_metrics.json"} <= set(tar.getnames())

  assert long_carry.unpack(tar_path, str(there)) == step
  moved, left = trained.load(str(there)), trained.load(str(here))
  assert moved.step == left.step == step
  jax.tree.map(np.testing.assert_array_equal, moved.params, left.params)
  capsys.readouterr()
  train.train_and_evaluate(config(5), str(there))
  assert f"Resumed from checkpoint at step {step} in {there}" in capsys.readouterr().out
  train.train_and_evaluate(config(5), str(once))
  a, b = trained.load(str(there)), trained.load(str(once))
  assert a.step == b.step == 5 * (256 // 64)
  jax.tree.map(np.testing.assert_array_equal, a.params, b.params)

  # A run that went further is never set back by an older tar.
  before = _mtimes(there)
  assert long_carry.unpack(tar_path, str(there)) is None
  assert _mtimes(there) == before


def test_packing_a_run_without_a_finished_checkpoint_names_the_problem(tmp_path):
  (tmp_path / "run" / "checkpoints" / "12").mkdir(parents=True)  # a save that never finished
  with pytest.raises(ValueError, match="has no finished checkpoint to carry; train it first"):
    long_carry.pack(str(tmp_path / "run"), str(tmp_path / "run.tar"))
  assert not (tmp_path / "run.tar").exists()
