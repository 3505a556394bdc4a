"""kill -9 at random moments, saves included, then a resume that ends bit-identical.

A tiny run (2 epochs of 8 steps) saves a checkpoint after every step, so that most of its
training time is spent inside saves and a random kill often lands in one. Each trial starts
the run in a fresh process, kills it (SIGKILL: no handler runs) once a randomly chosen step's
save has begun plus a random delay, and again on every resumed run, ``kills`` times; a last
resume runs to the end. The final state (parameters, Adam moments, step, RNG key), the epoch
lines' places and the test metrics must equal an uninterrupted run's, bit for bit, and no temporary
directory may be left. The fast variant (one trial, 3 kills) runs in CI; ``-m slow`` runs 8
trials of 4 kills each.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pareto_vae_jax import train

import test_resume
import tiny

_STEPS = 16


def _config():
  return tiny.config(checkpoint_every_steps=1)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """An uninterrupted run with the same config: (final state, test metrics, epoch lines)."""
  with pytest.MonkeyPatch.context() as mp:
    tiny.patch_dataset(mp, test_resume._dataset())
    workdir = tmp_path_factory.mktemp("uninterrupted")
    results = train.train_and_evaluate(_config(), str(workdir))
  state, step = test_resume._saved_state(workdir)
  assert step == _STEPS and results["finished"]
  return state, _test_metrics(workdir), _epoch_lines(workdir)


def _command(workdir) -> list[str]:
  script = ("import pytest, tiny, test_resume, test_kill\n"
            "from pareto_vae_jax import train\n"
            "with pytest.MonkeyPatch.context() as mp:\n"
            "  tiny.patch_dataset(mp, test_resume._dataset())\n"
            f"  train.train_and_evaluate(test_kill._config(), {str(workdir)!r})\n")
  return [sys.executable, "-c", script]


def _test_metrics(workdir) -> dict:
  return json.loads(pathlib.Path(workdir, "test_metrics.json").read_text())


def _epoch_lines(workdir) -> list[tuple[int, int]]:
  """(epoch, step) of each train line of metrics.jsonl. (A line's averages cover the steps
  since the last resume, so only its place is compared.)"""
  lines = []
  for line in pathlib.Path(workdir, "metrics.jsonl").read_text().splitlines():
    m = json.loads(line)
    if m["split"] == "train":
      lines.append((m["epoch"], m["step"]))
  return lines


def _saves_begun(checkpoints: pathlib.Path) -> set[int]:
  """Steps whose save has begun: a step directory, final or temporary."""
  steps = set()
  if checkpoints.is_dir():
    for p in checkpoints.iterdir():
      head = p.name.split(".")[0]
      if head.isdigit():
        steps.add(int(head))
  return steps


def _kill_during_a_save(workdir: pathlib.Path, rng: np.random.Generator) -> tuple[int, bool]:
  """Starts the run, kills it in or after a random step's save: (step aimed at, mid-save)."""
  checkpoints = workdir / "checkpoints"
  done = max(_saves_begun(checkpoints), default=0)
  target = int(rng.integers(min(done + 1, _STEPS), _STEPS + 1))
  proc = subprocess.Popen(_command(workdir), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, **test_resume._SUBPROCESS)
  try:
    deadline = time.time() + 180
    while (target not in _saves_begun(checkpoints) and proc.poll() is None
           and time.time() < deadline):
      time.sleep(0.002)
    time.sleep(float(rng.uniform(0.0, 0.03)))
    mid_save = any("tmp" in p.name for p in checkpoints.iterdir()) if checkpoints.is_dir() else False
    proc.send_signal(signal.SIGKILL)
  finally:
    proc.wait()
  return target, mid_save


def _trial(workdir: pathlib.Path, seed: int, kills: int, reference) -> int:
  """``kills`` random kills, then a resume to the end; returns how many landed mid-save."""
  rng = np.random.default_rng(seed)
  mid_saves = 0
  for _ in range(kills):
    _, mid_save = _kill_during_a_save(workdir, rng)  # may also land in the evaluation
    mid_saves += mid_save
  final = subprocess.run(_command(workdir), capture_output=True, text=True, timeout=300,
                         **test_resume._SUBPROCESS)
  assert final.returncode == 0, final.stderr[-3000:]
  # Falling back past a step the kill left unreadable is one warning line, no traceback.
  assert "Traceback" not in final.stderr, final.stderr[-3000:]

  reference_state, reference_metrics, reference_lines = reference
  state, step = test_resume._saved_state(workdir)
  assert step == _STEPS
  test_resume._assert_states_equal(state, reference_state)
  assert _test_metrics(workdir) == reference_metrics
  assert _epoch_lines(workdir) == reference_lines  # each epoch once, as uninterrupted
  leftovers = [p.name for p in (workdir / "checkpoints").iterdir() if "tmp" in p.name]
  assert not leftovers, leftovers
  return mid_saves


def test_random_kills_then_resume_end_bit_identical(reference, tmp_path):
  _trial(tmp_path / "run", seed=0, kills=3, reference=reference)


@pytest.mark.slow
def test_many_random_kills_then_resume_end_bit_identical(reference, tmp_path):
  mid_saves = sum(
      _trial(tmp_path / f"run{seed}", seed=seed, kills=4, reference=reference)
      for seed in range(8))
  print(f"{mid_saves} of 32 kills landed while a save's temporary directory existed")
