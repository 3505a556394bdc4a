"""End to end: the command line trains, evaluates, writes its outputs, resumes, and refuses bad input.

The command line runs in a subprocess, the honest test of flag parsing; it inherits the four host
CPU devices of conftest.py, so every run is data-parallel over a 4-device mesh.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from pareto_vae_jax import distributions, main, train
from pareto_vae_jax import vae

import tiny

# A larger batch keeps the steps few (39 per epoch); two even eval batches compile once. The
# decoder sees log z: on these raw inputs (up to ~37) an untrained encoder's LogNormal
# z = exp(mu + sigma eps) can overflow float32 at the first step.
CLI_SIZES = dict(batch_size=256, eval_batch_size=1000, decoder_input="log")
STEPS_PER_EPOCH = 10_000 // 256


def _run_main(*args: str, cwd) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "-m", "pareto_vae_jax.main", *args],
                        cwd=cwd,
                        capture_output=True,
                        text=True,
                        timeout=300)


def _tiny_main(workdir, *args: str, **overrides) -> subprocess.CompletedProcess:
  proc = _run_main("--dataset=synthetic_lognormal",
                   f"--workdir={workdir}",
                   *args,
                   *tiny.cli_flags(**overrides),
                   cwd=os.path.dirname(workdir))
  assert proc.returncode == 0, proc.stderr[-5000:]
  return proc


def _read_jsonl(path) -> list[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f]


# The label enters every model the same way (one-hot, concatenated to the encoder's and the
# decoder's inputs, models.py); a family's own code (heads, sampler, KL) runs the same with or
# without it, and the VAE row covers it. CI runs the CVAE of the Gaussian, of the Pareto (the
# learned conditional prior, the guide's model), of one joint family and of the IAF (its
# context); the other ten CVAE rows are marked slow (``pytest -m slow`` runs them).
_CVAE_IN_CI = ("gaussian", "pareto", "multivariate_t", "iaf")


def _cases():
  for latent in distributions.latent_names():
    yield pytest.param(latent, False, id=f"{latent}-vae")
    marks = () if latent in _CVAE_IN_CI else (pytest.mark.slow,)
    yield pytest.param(latent, True, id=f"{latent}-cvae", marks=marks)


@pytest.mark.parametrize("latent, conditional", list(_cases()))
def test_main_trains_evaluates_and_writes_every_output(tmp_path, latent, conditional):
  workdir = tmp_path / "run"
  proc = _tiny_main(workdir, f"--latent={latent}", *(["--conditional"] if conditional else []),
                    **CLI_SIZES)

  assert "epoch 1/2" in proc.stdout and "epoch 2/2" in proc.stdout, proc.stdout
  steps = 2 * STEPS_PER_EPOCH
  assert str(steps) in os.listdir(workdir / "checkpoints")
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir / "tensorboard"))

  train_lines = [m for m in _read_jsonl(workdir / "metrics.jsonl") if m["split"] == "train"]
  assert [m["epoch"] for m in train_lines] == [1, 2]
  for m in train_lines:
    for k in ("loss", "recon", "kl", "beta"):
      assert math.isfinite(m[k]), m

  with open(workdir / "test_metrics.json") as f:
    results = json.load(f)
  assert results["finished"] and results["step"] == steps
  assert results["config"]["latent"] == latent
  assert results["config"]["conditional"] == conditional
  for k in ("elbo", "iwae", "elbo_stderr", "iwae_stderr"):
    assert math.isfinite(results[k]), results
  # IWAE >= ELBO holds in expectation (Burda et al. 2016, theorem 1); both are estimates, so
  # allow three standard errors of their difference (taken as independent: conservative).
  slack = 3 * math.hypot(results["elbo_stderr"], results["iwae_stderr"])
  assert results["iwae"] >= results["elbo"] - slack, results


def test_main_run_again_resumes_from_its_checkpoint_instead_of_restarting(tmp_path):
  workdir = tmp_path / "run"
  args = ("--latent=pareto", "--conditional")
  first = _tiny_main(workdir, *args, num_epochs=1, **CLI_SIZES)
  assert "Resumed from checkpoint" not in first.stdout
  second = _tiny_main(workdir, *args, num_epochs=1, **CLI_SIZES)

  assert f"Resumed from checkpoint at step {STEPS_PER_EPOCH}" in second.stdout, second.stdout
  assert "epoch 1/1" not in second.stdout  # nothing left to train
  assert "already finished" in second.stdout  # nor to evaluate: the saved metrics stand
  lines = _read_jsonl(workdir / "metrics.jsonl")
  assert [m["split"] for m in lines] == ["train", "test"]


@pytest.mark.parametrize("flag, expected", [
    ("--latent=cauchy", ["cauchy", *distributions.latent_names()]),
    ("--prior=foo", ["foo", "standard", "learned"]),
    ("--config.nonexistent=1", ["nonexistent"]),
])
def test_main_refuses_a_bad_flag_and_names_it(tmp_path, flag, expected):
  proc = _run_main(flag, f"--workdir={tmp_path / 'run'}", cwd=tmp_path)
  assert proc.returncode != 0
  for word in expected:
    assert word in proc.stderr, proc.stderr
  assert not (tmp_path / "run").exists()


def test_conditional_training_refuses_labels_outside_the_classes(tmp_path, monkeypatch):
  ds = tiny.small_dataset("synthetic_lognormal", 256, 64)
  bad_y = ds.train_y.copy()
  bad_y[3] = ds.num_classes  # one label too large
  tiny.patch_dataset(monkeypatch, dataclasses.replace(ds, train_y=bad_y))

  with pytest.raises(ValueError) as info:
    train.train_and_evaluate(tiny.config(conditional=True), str(tmp_path / "run"))
  message = str(info.value)
  assert f"[0, {ds.num_classes})" in message
  assert f"[0, {ds.num_classes}]" in message  # the range found in the train split
  assert "without --conditional" in message
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_bernoulli_likelihood_refuses_inputs_outside_the_unit_interval(tmp_path, monkeypatch):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))

  with pytest.raises(ValueError) as info:
    train.train_and_evaluate(tiny.config(likelihood="bernoulli"), str(tmp_path / "run"))
  message = str(info.value)
  assert "'bernoulli' needs inputs in [0, 1]" in message and "synthetic_lognormal" in message
  assert "--config.likelihood=gaussian" in message


def test_mnist_conv_run_writes_reconstruction_and_sample_grids(tmp_path, monkeypatch):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("mnist", 128, 64))
  config = tiny.config(dataset="mnist",
                       likelihood="bernoulli",
                       architecture="conv",
                       conditional=True,
                       num_epochs=1,
                       binarize=True)
  results = train.train_and_evaluate(config, str(tmp_path))

  assert results["finished"] and np.isfinite(results["iwae"])
  for name in ("reconstructions.png", "samples.png"):
    with open(tmp_path / name, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n", name


def test_batch_larger_than_the_training_set_is_refused(tmp_path, monkeypatch):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))

  with pytest.raises(ValueError) as info:
    train.train_and_evaluate(tiny.config(batch_size=512), str(tmp_path / "run"))
  assert "batch_size=512 must be in [1, 256]" in str(info.value)
  assert "--config.batch_size" in str(info.value)
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_small_head_init_starts_lognormal_posteriors_narrow_on_raw_inputs(tmp_path, monkeypatch):
  # Raw synthetic LogNormal inputs reach ~37; with the default init the untrained encoder's
  # sigma can be large enough that exp(mu + sigma eps) overflows. head_init_scale (the
  # heavy-tail study, section 3.2) scales the last layer's initial weights and biases: the
  # same draws times sqrt(scale), so every raw output shrinks by exactly that factor.
  ds = tiny.small_dataset("synthetic_lognormal", 256, 64)
  tiny.patch_dataset(monkeypatch, ds)

  def initial_posterior(scale):
    config = tiny.config(latent="lognormal", decoder_input="z", head_init_scale=scale)
    model = vae.VAESpec.from_config(config, ds)
    state = train.init_state(model, train.make_optimizer(config), config)
    return vae.encode(model, state.params, ds.train_x, ds.train_y)

  default, small = initial_posterior(1.0), initial_posterior(0.01)
  np.testing.assert_allclose(small.loc, 0.1 * np.asarray(default.loc), rtol=1e-4, atol=1e-6)
  raw = lambda scale: np.log(np.expm1(np.asarray(scale, np.float64) - 1e-4))  # softplus^-1
  np.testing.assert_allclose(raw(small.scale), 0.1 * raw(default.scale), rtol=1e-3, atol=1e-5)

  config = tiny.config(latent="lognormal", decoder_input="z", head_init_scale=0.01)
  results = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert results["finished"] and math.isfinite(results["iwae"]), results


@pytest.mark.parametrize("kind", ["normal", "lognormal", "uniform", "inverse_gaussian"])
def test_denoising_noise_has_the_documented_law(kind):
  import scipy.stats
  config = tiny.config(noise=kind, noise_scale=0.5)
  x = np.zeros((4000, 2, 2, 1), np.float32)
  spec = vae.VAESpec.from_config(config, input_shape=(2, 2, 1), num_classes=0)
  noisy = np.asarray(vae.encoder_input(spec, x, jax.random.key(0), np.arange(4000)))
  unit = (noisy / 0.5).ravel()
  reference = {
      "normal": scipy.stats.norm(),
      "lognormal": scipy.stats.lognorm(0.5),
      "uniform": scipy.stats.uniform(),
      "inverse_gaussian": scipy.stats.invgauss(1.0)
  }
  assert scipy.stats.kstest(unit, reference[kind].cdf).pvalue > 1e-3


def test_stacked_noise_channels_keep_the_image_and_train(tmp_path, monkeypatch):
  ds = tiny.small_dataset("mnist", 128, 64)
  tiny.patch_dataset(monkeypatch, ds)
  config = tiny.config(dataset="mnist",
                       likelihood="sse",
                       noise="normal",
                       noise_channels=3,
                       num_epochs=1)
  x = np.asarray(ds.test_x[:8])
  spec = vae.VAESpec.from_config(config, ds)
  inputs = np.asarray(vae.encoder_input(spec, x, jax.random.key(1), np.arange(8)))
  assert inputs.shape == (8, 28, 28, 4)
  np.testing.assert_array_equal(inputs[..., :1], x)  # the image itself is untouched
  assert abs(inputs[..., 1:].std() - 0.2) < 0.01
  results = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert results["finished"] and math.isfinite(results["recon"])


def test_noise_channels_without_a_noise_type_are_refused(tmp_path, monkeypatch):
  tiny.patch_dataset(monkeypatch, tiny.small_dataset("synthetic_lognormal", 256, 64))
  with pytest.raises(ValueError, match="--config.noise=normal"):
    train.train_and_evaluate(tiny.config(noise_channels=2), str(tmp_path / "run"))


def test_learned_pareto_scale_stays_above_the_prior_scale_and_trains(tmp_path, monkeypatch):
  import pareto_vae_jax as pvj
  ds = tiny.small_dataset("mnist", 128, 64)
  tiny.patch_dataset(monkeypatch, ds)
  config = tiny.config(dataset="mnist",
                       likelihood="bernoulli",
                       latent="pareto",
                       pareto_posterior_scale="learned",
                       pareto_scale=0.5,
                       num_epochs=1)
  model = vae.VAESpec.from_config(config, ds)
  params = train.init_state(model, train.make_optimizer(config), config).params
  x, y = ds.test_x[:16], ds.test_y[:16]
  q = vae.encode(model, params, x, y)
  p = vae.prior(model, params, y, 16)
  assert np.all(np.asarray(q.scale) > 0.5) and np.ptp(np.asarray(q.scale)) > 0  # predicted
  np.testing.assert_array_equal(p.scale, 0.5)
  # The KL the step uses is the general-scale closed form, finite because x_q >= x_p.
  np.testing.assert_allclose(pvj.kl(q, p), pvj.kl_pareto(q.alpha, p.alpha, q.scale, p.scale))
  assert np.isfinite(np.asarray(pvj.kl(q, p))).all()
  results = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert results["finished"] and math.isfinite(results["iwae"]), results


def test_main_reruns_itself_once_with_glibc_keeping_freed_memory():
  calls = []
  command = ["python", "-m", "pareto_vae_jax.main", "--latent=pareto"]
  main.keep_freed_memory(command, environ={"PATH": "/bin"}, execve=lambda *args: calls.append(args))
  assert calls == [("python", command, {"PATH": "/bin", "GLIBC_TUNABLES": main.KEEP_FREED_MEMORY})]
  # Once: the re-executed process has the variable; a user's own tunables are kept.
  for environ in ({
      "GLIBC_TUNABLES": main.KEEP_FREED_MEMORY
  }, {
      "GLIBC_TUNABLES": "x=1"
  }, {
      "PVJ_KEEP_GLIBC_MALLOC": "1"
  }):
    main.keep_freed_memory(command, environ=environ, execve=lambda *args: calls.append(args))
  assert len(calls) == 1


_ABSL_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ ", re.M)


def test_console_shows_the_runs_own_lines_and_the_config_once_and_writes_config_json(tmp_path):
  workdir = tmp_path / "run"
  proc = _tiny_main(workdir, "--latent=pareto", "--conditional", **CLI_SIZES)
  output = proc.stdout + proc.stderr
  info = [line for line in output.splitlines() if line.startswith("I") and _ABSL_LINE.match(line)]
  assert info == [], info  # Orbax alone logs ~50 INFO lines per checkpoint at absl's default
  assert len(_ABSL_LINE.findall(output)) <= 3, output
  assert proc.stdout.count("config: ") == 1 and "latent='pareto'" in proc.stdout
  with open(workdir / "config.json") as f:
    written = json.load(f)
  with open(workdir / "test_metrics.json") as f:
    assert written == json.loads(json.dumps(json.load(f)["config"]))
  # Written at the start: before the first checkpoint.
  first_checkpoint = min((workdir / "checkpoints").iterdir(), key=lambda p: p.stat().st_mtime)
  assert (workdir / "config.json").stat().st_mtime <= first_checkpoint.stat().st_mtime


def test_verbosity_flag_brings_the_info_logs_back(tmp_path):
  proc = _tiny_main(tmp_path / "run",
                    "--latent=gaussian",
                    "--verbosity=0",
                    num_epochs=1,
                    **CLI_SIZES)
  assert len(_ABSL_LINE.findall(proc.stdout + proc.stderr)) > 10


def test_a_preset_by_name_from_any_directory_and_an_unknown_one_is_refused(tmp_path):
  proc = _run_main("--config=mnist_cvae_report", "--helpfull", cwd=tmp_path)
  # absl's --helpfull prints every flag and exits with status 1.
  assert "--latent: <" in proc.stdout and "Traceback" not in proc.stderr, proc.stderr[-3000:]
  proc = _run_main("--config=mnist_cvae_report",
                   "--workdir=x",
                   "--config.nonexistent=1",
                   cwd=tmp_path)
  assert proc.returncode != 0 and "nonexistent" in proc.stderr
  proc = _run_main("--config=no_such_preset", cwd=tmp_path)
  assert proc.returncode != 0
  assert "no preset named 'no_such_preset'" in proc.stderr and "mnist_cvae_report" in proc.stderr
  assert not (tmp_path / "runs").exists()


def test_preset_names_resolve_to_the_shipped_files_and_paths_stay_paths(tmp_path):
  assert {"tpu", "gpu", "default", "mnist_cvae_report"} <= set(main.presets())
  (resolved,) = main.resolve_config_argument(["--config=tpu:extra"])
  path, _, rest = resolved[len("--config="):].partition(".py:")
  assert rest == "extra" and os.path.exists(path + ".py")
  assert main.resolve_config_argument(["--config", "gpu"])[1].endswith("gpu.py")
  mine = tmp_path / "mine.py"
  mine.write_text("")
  for arg in (f"--config={mine}", "--config=configs/tpu.py", "--latent=pareto"):
    assert main.resolve_config_argument([arg]) == [arg]


def test_the_finished_run_is_one_row_of_tensorboards_hparams_tab(tmp_path):
  from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
  from test_reporting import _read_events
  workdir = tmp_path / "run"
  _tiny_main(workdir, "--latent=lognormal", num_epochs=1, **CLI_SIZES)
  values = {
      v.tag: v for e in _read_events(workdir / "tensorboard") if e.HasField("summary")
      for v in e.summary.value
  }
  start = HParamsPluginData.FromString(
      values["_hparams_/session_start_info"].metadata.plugin_data.content).session_start_info
  assert start.hparams["latent"].string_value == "lognormal"
  assert start.hparams["learning_rate"].number_value == pytest.approx(1e-3)
  assert start.hparams["conditional"].bool_value is False
  experiment = HParamsPluginData.FromString(
      values["_hparams_/experiment"].metadata.plugin_data.content).experiment
  metric_tags = {m.name.tag for m in experiment.metric_infos}
  with open(workdir / "test_metrics.json") as f:
    saved = json.load(f)
  assert {"test/elbo", "test/iwae"} <= metric_tags
  for tag in metric_tags:  # each metric is a scalar the run wrote, with the saved value
    assert values[tag].simple_value == pytest.approx(saved[tag[len("test/"):]], rel=1e-6)


def test_sigterm_saves_at_the_current_step_exits_143_and_the_next_start_resumes_there(tmp_path):
  workdir = tmp_path / "run"
  args = [
      sys.executable, "-m", "pareto_vae_jax.main", "--dataset=synthetic_lognormal",
      f"--workdir={workdir}", "--latent=gaussian"
  ]
  sizes = dict(CLI_SIZES, chunks_per_epoch=10)
  proc = subprocess.Popen(args + tiny.cli_flags(**sizes, num_epochs=500),
                          cwd=tmp_path,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE,
                          text=True)
  try:
    for line in proc.stdout:  # the first epoch ended: training is under way
      if line.startswith("epoch 1/500"):
        break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
  finally:
    proc.kill()
  assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
  assert "Traceback" not in err, err[-3000:]
  (notice,) = [l for l in out.splitlines() if l.startswith("Pre-emption notice")]
  step = int(re.search(r"at step (\d+)", notice).group(1))
  assert step > STEPS_PER_EPOCH and str(step) in os.listdir(workdir / "checkpoints")
  assert not (workdir / "test_metrics.json").exists()
  # The next start resumes at that step (with an end that is near, to keep the test short).
  epochs = step // STEPS_PER_EPOCH + 1
  again = _tiny_main(workdir, "--latent=gaussian", **dict(sizes, num_epochs=epochs))
  assert f"Resumed from checkpoint at step {step}" in again.stdout, again.stdout
  with open(workdir / "test_metrics.json") as f:
    assert json.load(f)["step"] == epochs * STEPS_PER_EPOCH
