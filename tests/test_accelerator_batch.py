"""experiments/accelerator_batch.py runs the heavy-tail study's commands of launch/reproduce.sh."""

import os
import subprocess

import pytest

import tiny

ROOT = os.path.join(os.path.dirname(__file__), "..")


@pytest.mark.parametrize("group", ["stacked", "denoise", "beta"])
def test_its_study_runs_are_reproduce_sh_commands_for_that_seed(group):
  batch = tiny.experiment("accelerator_batch")
  env = dict(os.environ,
             DRY_RUN="1",
             ONLY=group,
             STUDY_SEEDS="1",
             ROOT="runs/repro",
             FAMILIES=" ".join(batch.FAMILIES))  # the study's three (reproduce.sh adds Pareto)
  out = subprocess.run(["bash", "launch/reproduce.sh"],
                       cwd=ROOT,
                       env=env,
                       capture_output=True,
                       text=True,
                       check=True).stdout
  want = {}
  for line in out.splitlines():
    words = line.split()
    if "pareto_vae_jax.main" not in words:
      continue
    workdir = next(w for w in words if w.startswith("--workdir="))
    want[os.path.relpath(workdir.split("=", 1)[1], "runs/repro")] = sorted(
        w for w in words if w.startswith("--") and not w.startswith("--workdir="))
  got = {
      name: sorted(batch.STUDY + flags + ["--seed=1"]) for name, flags in batch.study_runs(group, 1)
  }
  # The batch also switches the TensorBoard summaries off, which does not change the training.
  for flags in got.values():
    flags.remove("--config.summary_every_epochs=0")
  assert got == want
