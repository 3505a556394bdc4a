"""launch/reproduce.sh: valid bash, and a dry run whose commands name real configs, families
and distinct workdirs."""

from __future__ import annotations

import os
import re
import subprocess

from pareto_vae_jax import distributions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "launch", "reproduce.sh")


def _dry_run(**env) -> list[str]:
  proc = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, timeout=60,
                        env=os.environ | {"DRY_RUN": "1", "PYTHON": "python", **env})
  assert proc.returncode == 0, proc.stderr
  return proc.stdout.splitlines()


def test_script_parses():
  assert subprocess.run(["bash", "-n", SCRIPT]).returncode == 0


def test_dry_run_trains_every_run_once_with_real_configs_and_families():
  lines = _dry_run(SHORT="1")
  trains = [l for l in lines if "-m pareto_vae_jax.main" in l]
  workdirs = [re.search(r"--workdir=(\S+)", l).group(1) for l in trains]
  # Each long literature run (one per seed) is resumed leg by leg, each leg with more epochs.
  long_runs = sorted({w for w in workdirs if "/literature_long/" in w})
  assert len(long_runs) == 3, long_runs
  for run in long_runs:
    legs = [l for l, w in zip(trains, workdirs) if w == run]
    epochs = [int(re.search(r"--config\.num_epochs=(\d+)", l).group(1)) for l in legs]
    assert len(legs) >= 2 and epochs == sorted(set(epochs)) and epochs[-1] == 3280, legs
  workdirs = [w for w in workdirs if "/literature_long/" not in w]
  assert len(workdirs) == len(set(workdirs)), "two runs share a workdir"
  for line in trains:
    config = re.search(r"--config=(\S+)", line)
    if config:
      assert os.path.exists(os.path.join(ROOT, config.group(1))), line
    assert re.search(r"--latent=(\S+)", line).group(1) in distributions.latent_names(), line
  # Every group evaluates what it trained.
  assert sum("-m pareto_vae_jax.evaluate" in l for l in lines) >= 7
  assert any("-m pareto_vae_jax.claims" in l for l in lines)


def test_short_mode_only_shortens_epochs():
  full, short = _dry_run(), _dry_run(SHORT="1")
  assert len(full) == len(short)
  strip = lambda l: re.sub(r" --config\.num_epochs=\d+", "", l)
  assert [strip(l) for l in full] == [strip(l) for l in short]
  assert any("--config.num_epochs=100" in l for l in full)


def test_one_group_runs_alone():
  lines = _dry_run(ONLY="claims")
  assert lines and all("claims" in l for l in lines)
