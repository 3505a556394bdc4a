r"""Command line: train and evaluate a (conditional) VAE with any registered latent family.

    python -m pareto_vae_jax.main --latent=pareto --conditional
    python -m pareto_vae_jax.main --config=configs/mnist_cvae_report.py --latent=gaussian

Flags given here override the same fields of ``--config``; ``--config.<field>=value``
overrides any other field.
"""

import os

from absl import app, flags
from ml_collections import config_flags

from pareto_vae_jax import data, distributions, train

_DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.py")

config_flags.DEFINE_config_file("config", _DEFAULT_CONFIG, "Training configuration file.",
                                lock_config=True)
_LATENT = flags.DEFINE_enum("latent", None, distributions.family_names(), "Latent family.")
_CONDITIONAL = flags.DEFINE_boolean("conditional", None, "Condition on the class label.")
_PRIOR = flags.DEFINE_enum("prior", None, ["standard", "learned", "vamp", "mixture"],
                           "Fixed, learned conditional, VampPrior or learnable mixture prior.")
_DATASET = flags.DEFINE_enum("dataset", None, data.DATASETS, "Training data.")
_SEED = flags.DEFINE_integer("seed", None, "Random seed.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (default runs/<name>).")


def run_name(config) -> str:
  kind = "cvae" if config.conditional else "vae"
  return f"{config.dataset}-{config.latent}-{kind}-{config.prior}-seed{config.seed}"


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  config = flags.FLAGS.config
  for field, flag in (("latent", _LATENT), ("conditional", _CONDITIONAL), ("prior", _PRIOR),
                      ("dataset", _DATASET), ("seed", _SEED)):
    if flag.value is not None:
      setattr(config, field, flag.value)
  workdir = _WORKDIR.value or os.path.join("runs", run_name(config))
  print(f"Training {run_name(config)} into {workdir}", flush=True)
  train.train_and_evaluate(config, workdir)


if __name__ == "__main__":
  app.run(main)
