r"""The README's quick-start table: the guide's model (the quick-start command) beside the
learned-posterior-scale variant and the Gaussian CVAE, same budget (the default config: MLP
512-256, 16 latent dimensions, 10 epochs), 3 seeds each. Prints a markdown table (mean ±
standard error over seeds of the test-set means) and each run's wall time with the load.

    python experiments/quickstart_table.py --out=runs/quickstart --seeds=0,1,2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

VARIANTS = {
    "guide's model (`--latent=pareto --conditional`)": ["--latent=pareto", "--conditional"],
    "learned posterior scale (`--config.pareto_posterior_scale=learned`)":
        ["--latent=pareto", "--conditional", "--config.pareto_posterior_scale=learned"],
    "Gaussian CVAE (`--latent=gaussian --conditional`)": ["--latent=gaussian", "--conditional"],
}


def mean_se(values):
  n, mean = len(values), sum(values) / len(values)
  if n < 2:
    return f"{mean:.2f}"
  sd = math.sqrt(sum((v - mean)**2 for v in values) / (n - 1))
  return f"{mean:.2f} ± {sd / math.sqrt(n):.2f}"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", default="runs/quickstart")
  parser.add_argument("--seeds", default="0,1,2")
  args = parser.parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  rows = []
  for i, (name, flags) in enumerate(VARIANTS.items()):
    results, walls = [], []
    for seed in seeds:
      workdir = os.path.join(args.out, f"variant{i}_seed{seed}")
      info = os.path.join(workdir, "wall.json")
      if not os.path.exists(info):
        start, load = time.time(), os.getloadavg()[0]
        subprocess.run([sys.executable, "-m", "pareto_vae_jax.main", f"--seed={seed}",
                        f"--workdir={workdir}", *flags], check=True)
        with open(info, "w") as f:
          json.dump({"wall_s": time.time() - start, "load_before": load,
                     "load_after": os.getloadavg()[0]}, f)
      with open(os.path.join(workdir, "test_metrics.json")) as f:
        results.append(json.load(f))
      with open(info) as f:
        walls.append(json.load(f))
    wall = sorted(w["wall_s"] for w in walls)[len(walls) // 2]
    loads = [w["load_before"] for w in walls] + [w["load_after"] for w in walls]
    rows.append(f"| {name} | {wall:.0f} s (load {min(loads):.1f}-{max(loads):.1f}) | " +
                " | ".join(mean_se([r[k] for r in results])
                           for k in ("elbo", "recon", "kl", "iwae")) + " |")
  table = "\n".join([
      "| model | median wall time | test ELBO | reconstruction | KL | IWAE bound (k=64) |",
      "|---|---|---|---|---|---|", *rows
  ]) + f"\n\nSeeds {seeds}; mean ± standard error over seeds."
  print(table)
  with open(os.path.join(args.out, "table.md"), "w") as f:
    f.write(table + "\n")


if __name__ == "__main__":
  main()
