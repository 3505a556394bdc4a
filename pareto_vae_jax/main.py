r"""Command line: train and evaluate a (conditional) VAE with any registered latent family.

    python -m pareto_vae_jax.main --latent=pareto --conditional
    python -m pareto_vae_jax.main --config=mnist_cvae_report --latent=gaussian
    pareto-vae --config=configs/tpu.py --latent=pareto     # the console script; a path works too

On several hosts (a TPU pod slice, Slurm), every process runs the same command with
``--multihost`` (see ``pareto_vae_jax.multihost`` and launch/):

    python -m pareto_vae_jax.main --multihost --config=tpu --latent=pareto --conditional

``--config`` takes a preset's name (``presets()``: the modules of ``pareto_vae_jax.configs``,
the repository's ``configs/``) or a path to a config file. Flags given here override the same
fields of ``--config``; ``--config.<field>=value`` overrides any other field.
"""

import importlib.resources
import os
import platform
import signal
import sys

# glibc's malloc: freed blocks of any size stay with the process instead of going back to the OS.
KEEP_FREED_MEMORY = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"


def keep_freed_memory(command: list[str], environ=os.environ, execve=os.execve) -> None:
  """Runs ``command`` (this one) again, once, with glibc keeping freed memory.

  XLA:CPU allocates each execution's temporaries as one block of tens of MB; glibc returns
  such a block to the OS when it is freed, and the next execution page-faults it in again. For
  the conv model on CPU, which runs one compiled step per call, that was a quarter of every
  step (48 -> 36 ms; docs/benchmarks.md). The tunable must be in the environment when the
  process starts, hence the re-execution. Skipped where ``GLIBC_TUNABLES`` is already set
  (yours is kept) or the C library is not glibc; ``PVJ_KEEP_GLIBC_MALLOC=1`` opts out.
  """
  if ("GLIBC_TUNABLES" in environ or environ.get("PVJ_KEEP_GLIBC_MALLOC") == "1" or
      platform.libc_ver()[0] != "glibc"):
    return
  execve(command[0], command, dict(environ, GLIBC_TUNABLES=KEEP_FREED_MEMORY))


def presets() -> list[str]:
  """Names ``--config`` accepts for the presets shipped in ``pareto_vae_jax.configs``."""
  folder = importlib.resources.files("pareto_vae_jax.configs")
  return sorted(p.name[:-3]
                for p in folder.iterdir()
                if p.name.endswith(".py") and not p.name.startswith("_"))


def resolve_config_argument(argv: list[str]) -> list[str]:
  """``argv`` with a preset name in ``--config=NAME[:args]`` replaced by its file's path.

  A value that names an existing file, or has a path separator or ``.py``, is left as it is
  (a path to a config file). An unknown name raises ``SystemExit`` listing the presets,
  before anything runs.
  """
  out = list(argv)
  for i, arg in enumerate(out):
    if arg == "--config" and i + 1 < len(out):
      i, value, prefix = i + 1, out[i + 1], ""
    elif arg.startswith("--config="):
      value, prefix = arg[len("--config="):], "--config="
    else:
      continue
    name, colon, rest = value.partition(":")
    if os.path.exists(name) or os.sep in name or "/" in name or name.endswith(".py"):
      continue
    if name not in presets():
      raise SystemExit(f"--config={value}: no preset named {name!r} and no such file. Presets: "
                       f"{', '.join(presets())}; or give the path to a config file.")
    path = importlib.resources.files("pareto_vae_jax.configs") / f"{name}.py"
    out[i] = f"{prefix}{path}{colon}{rest}"
  return out


if __name__ == "__main__":  # before JAX is imported
  keep_freed_memory([sys.executable, "-m", "pareto_vae_jax.main", *sys.argv[1:]])
  sys.argv[1:] = resolve_config_argument(sys.argv[1:])

# pylint: disable=wrong-import-position
import jax  # noqa: E402

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from pareto_vae_jax import checkpoint, checks, data, distributions, interrupts  # noqa: E402
from pareto_vae_jax import multihost, train, vae  # noqa: E402

# Errors a user fixes by changing the command (their messages say how): main prints the message
# alone, without a traceback, and exits with status 2 (a usage error, as absl's for a bad flag).
CONFIG_ERRORS = (checks.ConfigError, checkpoint.IncompatibleCheckpointError,
                 data.DatasetNotFoundError, data.BadDataError)

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.py")

config_flags.DEFINE_config_file("config",
                                _DEFAULT_CONFIG,
                                "Training configuration file.",
                                lock_config=True)
_LATENT = flags.DEFINE_enum("latent", None, distributions.latent_names(), "Latent family.")
_CONDITIONAL = flags.DEFINE_boolean("conditional", None, "Condition on the class label.")
_PRIOR = flags.DEFINE_enum(
    "prior", None, list(vae.PRIORS),
    "Fixed, learned conditional, VampPrior or learnable mixture prior; "
    "auto (the default): learned for a Pareto CVAE (the guide's model), "
    "else fixed.")
_OBJECTIVE = flags.DEFINE_enum(
    "objective", None, list(vae.OBJECTIVES),
    "elbo (the default), or gamma_power: the gamma-power divergence of t3VAE "
    "(--latent=multivariate_t --config.likelihood=gaussian) or ParetoVAE "
    "(--latent=multivariate_symmetric_pareto with --config.likelihood=laplace, its symPareto "
    "decoder, or gaussian, its t decoder); pareto_vae_jax/gamma_power.py.")
_DATASET = flags.DEFINE_string(
    "dataset", None, f"Training data: one of {', '.join(data.DATASETS)}, or "
    f"{data.NPZ_PREFIX}PATH for your own sequences (pareto_vae_jax/sequences.py).")
flags.register_validator(
    "dataset",
    lambda name: name is None or name in data.DATASETS or name.startswith(data.NPZ_PREFIX),
    message=f"--dataset must be one of {', '.join(data.DATASETS)}, or {data.NPZ_PREFIX}PATH.")
_SEED = flags.DEFINE_integer("seed", None, "Random seed.")
_MULTIHOST = flags.DEFINE_boolean(
    "multihost", None, "Join a multi-process run with jax.distributed.initialize() (TPU pod "
    "slices, Slurm and other clusters are detected). Default: only when JAX_COORDINATOR_ADDRESS, "
    "JAX_NUM_PROCESSES > 1 and JAX_PROCESS_ID are set.")
_PROFILE_STEPS = flags.DEFINE_string(
    "profile_steps", None, "Capture a jax.profiler trace of these training steps into "
    "<workdir>/profile: 'n' (steps 1..n, after the compiling step 0) or 'a:b'.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (default runs/<name>).")


def run_name(config) -> str:
  kind = "cvae" if config.conditional else "vae"
  dataset = config.dataset
  if dataset.startswith(data.NPZ_PREFIX):  # a path: its file name, without the extension
    dataset = "npz-" + os.path.splitext(os.path.basename(dataset[len(data.NPZ_PREFIX):]))[0]
  return f"{dataset}-{config.latent}-{kind}-{vae.resolve_prior(config)}-seed{config.seed}"


def _sequence_defaults(config) -> None:
  """``--dataset`` of sequences with the image defaults (mlp, bernoulli): the sequence model."""
  sequential = config.dataset == "architectures" or config.dataset.startswith(data.NPZ_PREFIX)
  if sequential and config.architecture == "mlp" and config.likelihood == "bernoulli":
    config.architecture, config.likelihood = "bilstm", "sequence"
    print(
        "Sequence data: architecture=bilstm, likelihood=sequence (the sequence VAE; "
        "--config=sequence_vae is its tuned preset).",
        flush=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if not flags.FLAGS["verbosity"].present:
    # The run's own lines only: Orbax logs ~50 INFO lines per checkpoint. --verbosity=0 (or
    # -v 0) shows them again.
    logging.set_verbosity(logging.WARNING)
  config = flags.FLAGS.config
  for field, flag in (("latent", _LATENT), ("conditional", _CONDITIONAL), ("prior", _PRIOR),
                      ("dataset", _DATASET), ("seed", _SEED), ("profile_steps", _PROFILE_STEPS),
                      ("objective", _OBJECTIVE)):
    if flag.value is not None:
      setattr(config, field, flag.value)
  if _DATASET.value is not None:
    _sequence_defaults(config)
  try:
    checks.check_fields(config)  # before the devices start and the workdir is made
    multihost.initialize(_MULTIHOST.value)  # before anything else touches the devices
    workdir = _WORKDIR.value or os.path.join("runs", run_name(config))
    multihost.say(f"Training {run_name(config)} into {workdir} on {jax.process_count()} "
                  f"process(es), {jax.device_count()} {jax.default_backend()} device(s)")
    train.train_and_evaluate(config, workdir)
  except CONFIG_ERRORS as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
  except interrupts.Preempted:
    # Saved and told where; 128 + SIGTERM, the status of a process ended by that signal, so
    # that a scheduler's retry (or `until ...; do ...; done`) starts it again to resume.
    sys.exit(128 + signal.SIGTERM)


def console() -> None:
  """The ``pareto-vae`` console script: the same as ``python -m pareto_vae_jax.main``."""
  keep_freed_memory([sys.executable, "-m", "pareto_vae_jax.main", *sys.argv[1:]])
  sys.argv[1:] = resolve_config_argument(sys.argv[1:])
  app.run(main)


if __name__ == "__main__":
  app.run(main)
