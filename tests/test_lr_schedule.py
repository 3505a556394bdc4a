"""The learning-rate schedules: Burda et al.'s stages against a plain loop, inside the optimizer
the trainer builds, across a resume, and refused where a saved run would change under them."""

import os
import subprocess
import sys

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from pareto_vae_jax import checkpoint, train, trained

import tiny


def _burda_rate(base: float, epoch: int) -> float:
  """Burda et al. (2016), section 5, as a loop: pass i = 0..7 trains 3**i epochs at
  base * 10**(-i/7); epochs past the 3280 stay at the last rate."""
  start = 0
  for i in range(8):
    if epoch < start + 3**i:
      return base * 10**(-i / 7)
    start += 3**i
  return base * 10**(-7 / 7)


def test_the_burda_schedule_follows_the_papers_passes_at_every_step():
  spe = 3  # steps per epoch
  schedule = train.learning_rate(tiny.config(lr_schedule="burda", learning_rate=2e-3), spe)
  steps = np.arange(spe * 3300)
  got = np.asarray(jax.vmap(schedule)(jnp.asarray(steps)))
  want = np.array([_burda_rate(2e-3, s // spe) for s in steps])
  np.testing.assert_allclose(got, want, rtol=1e-6)
  assert train.burda_stage_ends()[-1] == 3280  # the paper's total
  # The constant schedule is the bare number Adam always had.
  assert train.learning_rate(tiny.config(learning_rate=2e-3)) == 2e-3


def test_the_trainers_chain_scales_adams_update_by_the_schedule_alone():
  """Fed the same gradients, the scheduled chain's update is the constant chain's times
  rate(step) / base, at every step (Adam's moments do not see the rate)."""
  spe, base = 2, 1e-3
  constant = train.make_optimizer(tiny.config(learning_rate=base))
  burda = train.make_optimizer(tiny.config(learning_rate=base, lr_schedule="burda"), spe)
  params = {"w": jnp.zeros(5)}
  sc, sb = constant.init(params), burda.init(params)
  grads = jax.random.normal(jax.random.key(0), (30, 5))
  for step in range(30):
    g = {"w": grads[step]}
    uc, sc = constant.update(g, sc, params)
    ub, sb = burda.update(g, sb, params)
    np.testing.assert_allclose(ub["w"],
                               uc["w"] * _burda_rate(base, step // spe) / base,
                               rtol=1e-5,
                               err_msg=f"step {step}")


def test_a_burda_run_resumed_leg_by_leg_ends_where_one_run_does(tmp_path, monkeypatch):
  """The rate depends on the epoch only, so 2 epochs then 5 equal 5 at once, across the
  stage boundaries after epochs 1 and 4."""
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))
  legs, once = str(tmp_path / "legs"), str(tmp_path / "once")
  for epochs in (2, 5):
    train.train_and_evaluate(tiny.config(num_epochs=epochs, lr_schedule="burda"), legs)
  train.train_and_evaluate(tiny.config(num_epochs=5, lr_schedule="burda"), once)
  a, b = trained.load(legs), trained.load(once)
  assert a.step == b.step == 5 * (256 // 64)
  jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
  # And the schedule changed the run: the constant rate ends elsewhere.
  constant = str(tmp_path / "constant")
  train.train_and_evaluate(tiny.config(num_epochs=5), constant)
  assert not np.allclose(
      jax.flatten_util.ravel_pytree(trained.load(constant).params)[0],
      jax.flatten_util.ravel_pytree(b.params)[0])


def test_resuming_under_another_schedule_is_refused_by_name(tmp_path, monkeypatch):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))
  workdir = tmp_path / "run"
  train.train_and_evaluate(tiny.config(num_epochs=1), str(workdir))
  before = {p: os.stat(p).st_mtime_ns for p in map(str, workdir.rglob("*"))}
  with pytest.raises(checkpoint.IncompatibleCheckpointError,
                     match=r"optimizer: saved 'global-norm clip, Adam' vs requested 'global-norm "
                     r"clip, Adam \(burda lr\)'"):
    train.train_and_evaluate(tiny.config(num_epochs=2, lr_schedule="burda"), str(workdir))
  assert {p: os.stat(p).st_mtime_ns for p in map(str, workdir.rglob("*"))} == before


def test_an_unknown_schedule_is_refused_before_anything_is_written(tmp_path):
  proc = subprocess.run([
      sys.executable, "-m", "pareto_vae_jax.main", "--dataset=synthetic_lognormal",
      f"--workdir={tmp_path / 'run'}", *tiny.cli_flags(num_epochs=1), "--config.lr_schedule=cosine"
  ],
                        cwd=tmp_path,
                        capture_output=True,
                        text=True,
                        timeout=300)
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert proc.stderr.strip().splitlines()[-1] == (
      "error: config.lr_schedule='cosine' is not one of constant, burda; set "
      "--config.lr_schedule=constant (the default) or burda.")
  assert os.listdir(tmp_path) == []
