r"""The notes' comparison on the sequence VAE: four posteriors with the same decoder and an
N(0, I) prior, and the guide's Pareto CVAE, on ``--dataset=architectures``, several seeds.

Every run is ``python -m pareto_vae_jax.main --config=sequence_vae`` with the model's flags and
``--config.free_bits_groups=1`` (one floor on the whole KL, which the joint posteriors need, so
that every model has the same objective). Runs already finished are read back, so the script
resumes. The markdown table (mean ± standard error over seeds) goes to stdout and to
``<out>/table.md``.

    python experiments/sequence_comparison.py --out=runs/sequence_comparison --seeds=0,1,2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import time

MODELS = {
    "Gaussian (diagonal)": ["--latent=gaussian"],
    "Gaussian (full covariance)": ["--latent=full_cov_gaussian"],
    "Planar flow (8 layers)": ["--latent=planar"],
    "IAF (2 steps)": ["--latent=iaf"],
    "Pareto CVAE (learned conditional prior)": ["--latent=pareto", "--conditional",
                                                "--prior=learned"],
}
METRICS = (("tf_type_accuracy", "TF type acc."), ("fr_type_accuracy", "FR type acc."),
           ("tf_exact_match", "TF exact"), ("fr_exact_match", "FR exact"),
           ("prior_validity", "prior valid"), ("prior_uniqueness", "prior unique"),
           ("prior_novelty", "prior novel"), ("elbo", "test ELBO"), ("iwae", "IWAE (k=64)"))


def run(out: str, name: str, flags: list[str], seed: int, extra: list[str]) -> dict:
  slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
  workdir = os.path.join(out, f"{slug}_seed{seed}")
  metrics = os.path.join(workdir, "test_metrics.json")
  if not os.path.exists(metrics):
    start = time.time()
    subprocess.run([
        sys.executable, "-m", "pareto_vae_jax.main", "--config=sequence_vae", f"--seed={seed}",
        f"--workdir={workdir}", "--config.free_bits_groups=1", *flags, *extra
    ], check=True)
    with open(os.path.join(workdir, "wall_seconds.txt"), "w") as f:
      f.write(f"{time.time() - start:.0f}\n")
  with open(metrics) as f:
    return json.load(f)


def mean_se(values: list[float]) -> str:
  n = len(values)
  mean = sum(values) / n
  if n < 2:
    return f"{mean:.3f}"
  sd = math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))
  return f"{mean:.3f} ± {sd / math.sqrt(n):.3f}"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", default="runs/sequence_comparison")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--extra", default="", help="more flags for every run, space-separated")
  args = parser.parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  extra = args.extra.split()
  rows = []
  for name, flags in MODELS.items():
    results = [run(args.out, name, flags, seed, extra) for seed in seeds]
    cells = [mean_se([r[k] for r in results]) for k, _ in METRICS]
    rows.append(f"| {name} | " + " | ".join(cells) + " |")
  header = "| posterior | " + " | ".join(label for _, label in METRICS) + " |"
  table = "\n".join([header, "|" + "---|" * (len(METRICS) + 1), *rows])
  table += f"\n\nSeeds {seeds}; mean ± standard error over seeds."
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "table.md"), "w") as f:
    f.write(table + "\n")
  print(table)


if __name__ == "__main__":
  main()
