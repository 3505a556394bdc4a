"""Bad input: clear errors from concrete values, documented behaviour under jit, and configs
refused (by ``checks.check_config`` and the command line) before a run writes anything."""

import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

import pareto_vae_jax as pvj
from pareto_vae_jax import checkpoint, checks, train
from pareto_vae_jax import config as config_lib

import tiny

BAD = [
    (pvj.Gaussian, (0.0, -1.0), "scale"),
    (pvj.LogNormal, (0.0, 0.0), "scale"),
    (pvj.Pareto, (-0.5, 1.0), "alpha"),
    (pvj.Pareto, (1.0, 0.0), "scale"),
    (pvj.InverseGaussian, (0.0, 1.0), "mean"),
    (pvj.InverseGaussian, (1.0, np.nan), "shape"),
]


@pytest.mark.parametrize("family,params,name", BAD, ids=[f"{b[0].__name__}-{b[2]}" for b in BAD])
def test_non_positive_parameter_raises_value_error_naming_it(family, params, name):
  with pytest.raises(ValueError, match=rf"{family.__name__}: parameter '{name}' must be > 0"):
    family(*params)


def test_array_with_one_bad_entry_is_rejected_and_counted():
  with pytest.raises(ValueError, match=r"'alpha'.*at 1 position"):
    pvj.Pareto(jnp.array([1.0, 2.0, -3.0]))


def test_under_jit_values_are_not_checked_and_invalid_parameters_give_nan():
  out = jax.jit(lambda a: pvj.kl_pareto(a, 1.0))(-1.0)
  assert np.isnan(out)
  z = jax.jit(lambda a: pvj.rsample(jax.random.key(0), pvj.Pareto(a), (4,)))(-1.0)
  assert z.shape == (4,)  # no error is possible under jit; the values are meaningless


def test_real_parameters_accept_any_value_and_distributions_are_immutable():
  d = pvj.Gaussian(-1e6, 1.0)
  with pytest.raises(Exception, match="immutable"):
    d.loc = 0.0
  assert float(d.replace(loc=2.0).loc) == 2.0
  with pytest.raises(ValueError, match="'scale'"):
    d.replace(scale=-1.0)


def test_rsample_log_and_log_prob_log_reject_real_support_families():
  with pytest.raises(TypeError, match="positive family"):
    pvj.rsample_log(jax.random.key(0), pvj.Gaussian(0.0, 1.0))
  with pytest.raises(TypeError, match="positive family"):
    pvj.log_prob_log(pvj.Gaussian(0.0, 1.0), 0.0)


def test_unknown_family_name_lists_choices():
  with pytest.raises(ValueError, match="Unknown latent family 'cauchy'; valid choices") as info:
    pvj.family_info("cauchy")
  for name in ("gaussian", "lognormal", "pareto", "inverse_gaussian"):
    assert name in str(info.value)


def test_heads_map_any_real_to_their_floor_or_above():
  x = jnp.array([-1e4, -100.0, 0.0, 100.0, 1e4])
  for head, floor in ((pvj.softplus_floor, 1e-4), (pvj.elu_plus_one, 1e-4)):
    y = head(x)
    assert np.all(y >= floor) and np.all(np.isfinite(y))
    assert np.all(np.isfinite(jax.vmap(jax.grad(head))(x)))
  np.testing.assert_allclose(pvj.elu_plus_one(jnp.array([-1.0, 2.0]), floor=0.0), [np.exp(-1), 3])


# ------------------------------------------------------------------------------------------------
# Config values.


def _small():
  return tiny.small_dataset("synthetic_lognormal", 256, 64)


def _run_main(*args: str, cwd) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "pareto_vae_jax.main", *args],
                        cwd=cwd,
                        capture_output=True,
                        text=True,
                        timeout=300)


def _files(directory) -> dict[str, float]:
  """Every file under ``directory`` with its modification time."""
  return {
      os.path.join(root, f): os.stat(os.path.join(root, f)).st_mtime_ns
      for root, _, names in os.walk(directory) for f in names
  }


def test_every_numeric_field_of_the_default_config_has_a_range_and_the_default_is_in_it():
  default = config_lib.get_config()
  numeric = {
      k for k, v in default.items()
      if isinstance(v, (int, float)) and not isinstance(v, bool) or isinstance(v, tuple) and all(
          isinstance(x, int) for x in v)
  }
  assert numeric == set(checks.FIELD_RANGES)
  checks.check_fields(default)


BAD_VALUES = [
    ("learning_rate", 0.0, "a finite number > 0"),
    ("learning_rate", -1e-3, "a finite number > 0"),
    ("learning_rate", math.nan, "a finite number > 0"),
    ("num_epochs", 0, "an integer >= 1"),
    ("num_epochs", -2, "an integer >= 1"),
    ("grad_clip", 0.0, "a finite number > 0"),
    ("weight_decay", -1e-4, "a finite number >= 0"),
    ("keep_checkpoints", 0, "an integer >= 1"),
    ("iwae_samples", 0, "an integer >= 1"),
    ("latent_dim", 0, "an integer >= 1"),
    ("eval_batch_size", 0, "an integer >= 1"),
    ("checkpoint_every_steps", -1, "an integer >= 0"),
    ("beta", -0.5, "a finite number >= 0"),
    ("warmup_epochs", -1.0, "a finite number >= 0"),
    ("free_bits", -0.1, "a finite number >= 0"),
    ("noise_scale", -0.2, "a finite number >= 0"),
    ("noise_channels", -1, "an integer >= 0"),
    ("prior_components", 0, "an integer >= 1"),
    ("flow_layers", 0, "an integer >= 1"),
    ("iaf_steps", 0, "an integer >= 1"),
    ("iaf_hidden", 0, "an integer >= 1"),
    ("iaf_context", 0, "an integer >= 1"),
    ("head_init_scale", 0.0, "a finite number > 0"),
    ("gaussian_scale", 0.0, "a finite number > 0"),
    ("pareto_alpha0", 0.0, "a finite number > 0"),
    ("pareto_scale", -1.0, "a finite number > 0"),
    ("steps_per_dispatch", -1, "an integer >= 0"),
    ("chunks_per_epoch", -1, "an integer >= 0"),
    ("halt_after_steps", -1, "an integer >= 0"),
    ("summary_every_epochs", -1, "an integer >= 0"),
    ("hidden", (32, 0), "a tuple of integers >= 1"),
    ("seed", -1, "an integer in [0, 4294967295]"),
    ("batch_size", 0, "an integer >= 1"),
]


@pytest.mark.parametrize("field,value,allowed",
                         BAD_VALUES,
                         ids=[f"{f}={v}" for f, v, _ in BAD_VALUES])
def test_a_value_out_of_range_is_refused_naming_the_field_its_range_and_the_flag(
    field, value, allowed):
  with pytest.raises(ValueError) as info:
    checks.check_config(tiny.config(**{field: value}), _small(), 1)
  assert str(
      info.value).startswith(f"config.{field}={value!r}: must be {allowed}; set --config.{field}=")


TYPES = [
    ("learning_rate", "1e-3", "a finite number > 0"),
    ("seed", 1.5, "an integer in [0, 4294967295]"),
    ("num_epochs", True, "an integer >= 1"),
    ("hidden", "32", "a tuple of integers >= 1"),
]


@pytest.mark.parametrize("field,value,allowed", TYPES, ids=[f"{f}={v!r}" for f, v, _ in TYPES])
def test_a_value_of_the_wrong_type_is_refused_with_a_type_error(field, value, allowed):
  # A ConfigDict built from a plain dict (a notebook's, say) takes any type.
  config = ml_collections.ConfigDict(tiny.config().to_dict() | {field: value})
  with pytest.raises(TypeError) as info:
    checks.check_config(config, _small(), 1)
  assert str(info.value).startswith(f"config.{field}={value!r}: must be {allowed}; set ")


def test_every_field_out_of_range_is_named_in_one_error_one_line_each():
  with pytest.raises(ValueError) as info:
    checks.check_fields(tiny.config(learning_rate=0.0, num_epochs=0, hidden=(0,)))
  lines = str(info.value).splitlines()
  assert [line.split("=")[0] for line in lines
         ] == ["config.hidden", "config.num_epochs", "config.learning_rate"]
  assert "--config.hidden=(512,256) (the default)" in lines[0]


def test_a_workdir_trained_with_another_seed_is_refused_and_left_as_it_was(tmp_path, monkeypatch):
  tiny.patch_dataset(monkeypatch, _small())
  workdir = tmp_path / "run"
  train.train_and_evaluate(tiny.config(num_epochs=1, seed=0), str(workdir))
  before = _files(workdir)

  with pytest.raises(checkpoint.IncompatibleCheckpointError,
                     match="config.seed: saved 0 vs "
                     "requested 1"):
    train.train_and_evaluate(tiny.config(num_epochs=1, seed=1), str(workdir))
  assert _files(workdir) == before

  # The command line says the same in one line and exits with status 2: no traceback.
  monkeypatch.undo()
  proc = _run_main("--dataset=synthetic_lognormal",
                   f"--workdir={workdir}",
                   "--seed=1",
                   *tiny.cli_flags(num_epochs=1),
                   cwd=tmp_path)
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert "error: Checkpoint directory" in proc.stderr and "config.seed: saved 0 vs requested 1" \
      in proc.stderr, proc.stderr[-3000:]
  assert "Traceback" not in proc.stderr
  assert _files(workdir) == before


def test_main_refuses_a_value_out_of_range_in_one_line_with_status_2_writing_nothing(tmp_path):
  workdir = tmp_path / "run"
  proc = _run_main("--dataset=synthetic_lognormal",
                   f"--workdir={workdir}",
                   *tiny.cli_flags(learning_rate=0, num_epochs=1),
                   cwd=tmp_path)
  assert proc.returncode == 2, proc.stderr[-3000:]
  assert proc.stderr.strip().splitlines()[-1] == (
      "error: config.learning_rate=0.0: must be a finite number > 0; set "
      "--config.learning_rate=0.001 (the default) or another such value.")
  assert "Traceback" not in proc.stderr
  assert os.listdir(tmp_path) == []


def test_the_non_finite_guard_names_the_step_that_failed_not_the_chunks_first():
  import numpy as np
  from pareto_vae_jax import train
  metrics = {
      "loss": np.array([1.0, 2.0, np.nan, 4.0]),
      "kl": np.array([0.0, np.inf, 0.0, 0.0]),
      "grad_norm": np.array([1.0, 1.0, 1.0, 1.0])
  }
  with pytest.raises(FloatingPointError, match=r"at step 101: \{'kl': inf\}"):
    train._check_finite(metrics, 100)  # the chunk ran steps 100..103; step 101 went first
  train._check_finite({"loss": np.ones(3)}, 7)  # all finite: nothing raised


def test_resuming_with_weight_decay_switched_on_is_refused_by_name(tmp_path, monkeypatch):
  """Weight decay adds a stage to the optimizer chain, so the saved optimizer state cannot be
  restored into it: the refusal names the optimizer and leaves the workdir as it was."""
  tiny.patch_dataset(monkeypatch, _small())
  workdir = tmp_path / "run"
  train.train_and_evaluate(tiny.config(num_epochs=1), str(workdir))
  before = _files(workdir)
  with pytest.raises(checkpoint.IncompatibleCheckpointError,
                     match="optimizer: saved 'global-norm clip, Adam' vs requested 'global-norm "
                     r"clip, weight decay \(config.weight_decay > 0\), Adam'"):
    train.train_and_evaluate(tiny.config(num_epochs=2, weight_decay=1e-4), str(workdir))
  assert _files(workdir) == before


@pytest.mark.parametrize("field, before, after", [("noise_scale", 0.2, 1.0),
                                                  ("objective", "elbo", "gamma_power"),
                                                  ("gaussian_scale", 1.0, 0.1)])
def test_resuming_with_another_objective_is_refused_by_name(tmp_path, monkeypatch, field, before,
                                                            after):
  """The fields that change what the model is trained to fit (not only its shapes) are part of
  the checkpoint's model: a resume under another value is refused, naming the field, and the
  workdir is left as it was."""
  tiny.patch_dataset(monkeypatch, _small())
  workdir = tmp_path / "run"
  common = dict(latent="multivariate_t", conditional=False, likelihood="gaussian", noise="normal")
  train.train_and_evaluate(tiny.config(num_epochs=1, **common, **{field: before}), str(workdir))
  before_files = _files(workdir)
  with pytest.raises(checkpoint.IncompatibleCheckpointError,
                     match=f"config.{field}: saved {before!r} vs requested {after!r}"):
    train.train_and_evaluate(tiny.config(num_epochs=2, **common, **{field: after}), str(workdir))
  assert _files(workdir) == before_files
