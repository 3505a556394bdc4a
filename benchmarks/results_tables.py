r"""Builds the tables of docs/RESULTS.md from the runs of launch/reproduce.sh.

    SHORT=1 bash launch/reproduce.sh && python benchmarks/results_tables.py runs/repro

Prints markdown: this project's numbers next to the sources' (the sources' numbers are
copied from their tables, cited per table).
"""

from __future__ import annotations

import json
import os
import sys

FAMILIES = ("gaussian", "lognormal", "inverse_gaussian", "pareto")
NAMES = {"gaussian": "Normal", "lognormal": "LogNormal", "inverse_gaussian": "Inverse Gaussian",
         "pareto": "Pareto"}

# The heavy-tail study (docs/REFERENCES.md), reconstruction errors on the test set.
STUDY_TABLE4 = {"synthetic": (0.0128, 0.0327, 0.1945), "heavy_tail": (5.6380, 6.0242, 6.3093),
                "mnist_exp": (18.9708, 21.029, 22.1914)}
STUDY_TABLE2 = {0.0: (5.7492, 5.9889, 6.3569), 0.01: (5.6380, 6.0242, 6.3093),
                0.02: (5.7418, 6.0074, 6.3297), 0.03: (5.8343, 6.1501, 6.4141),
                0.1: (6.1855, 6.5709, 6.3293), 0.2: (6.7218, 7.5128, 6.3667),
                0.3: (7.3572, 8.3121, 6.4305)}
STUDY_TABLE5 = {"normal": (7.9923, 8.1758, 8.3661), "lognormal": (25.2696, 29.9268, 24.5316),
                "uniform": (16.5163, 24.0331, 8.7814),
                "inverse_gaussian": (26.3575, 32.5612, 20.6736)}
STUDY_TABLE6 = {"normal": (6.1330, 6.4419, 6.6628), "lognormal": (6.2493, 6.5027, 6.7255),
                "uniform": (6.3211, 6.5725, 6.8283),
                "inverse_gaussian": (6.4158, 6.7951, 6.7700)}


def load(root: str, group: str, name: str) -> dict | None:
  path = os.path.join(root, group, name, "test_metrics.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    result = json.load(f)
  ev = os.path.join(root, group, name, "evaluation", "evaluation.json")
  if os.path.exists(ev):
    with open(ev) as f:
      result["evaluation"] = json.load(f)
  return result


def last_train_epoch(root: str, group: str, name: str) -> dict | None:
  path = os.path.join(root, group, name, "metrics.jsonl")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    lines = [json.loads(l) for l in f]
  train = [m for m in lines if m["split"] == "train"]
  return train[-1] if train else None


def fmt(result: dict | None, key: str = "recon", digits: int = 2) -> str:
  if result is None:
    return "—"
  return f"{result[key]:.{digits}f} ± {result[key + '_stderr']:.{digits}f}"


def report_table(root: str) -> str:
  source = {"gaussian-vae": (138.00, 6.59, 144.59), "gaussian-cvae": (124.36, 4.80, 129.16)}
  lines = ["| model | source recon / KL / total (final training epoch) | ours, final training "
           "epoch | ours, test recon / KL / −ELBO | IWAE NLL (k) | active units |",
           "|---|---|---|---|---|---|"]
  for name in ("gaussian-vae", "gaussian-cvae", "pareto-vae", "pareto-cvae",
               "pareto-cvae-learned"):
    r, t = load(root, "report", name), last_train_epoch(root, "report", name)
    if r is None:
      lines.append(f"| {name} | | not run | | | |")
      continue
    src = " / ".join(f"{v:.2f}" for v in source[name]) if name in source else "—"
    ours_train = f"{t['recon']:.2f} / {t['kl']:.2f} / {t['recon'] + t['kl']:.2f}"
    ours_test = f"{r['recon']:.2f} / {r['kl']:.2f} / {-r['elbo']:.2f}"
    ev = r.get("evaluation")
    iwae = (f"{ev['nll_iwae']:.2f} ± {ev['iwae_stderr']:.2f} ({ev['iwae_samples']})" if ev
            else f"{-r['iwae']:.2f} ± {r['iwae_stderr']:.2f} (64)")
    active = f"{ev['active_units']}/{ev['latent_dim']}" if ev else "—"
    lines.append(f"| {name} | {src} | {ours_train} | {ours_test} | {iwae} | {active} |")
  return "\n".join(lines)


def family_row_table(root: str, rows: list[tuple[str, str, str, tuple]], label: str) -> str:
  """rows: (row label, group, name pattern with {latent}, source numbers of 3 families)."""
  head = "| " + label + " | " + " | ".join(NAMES[f] for f in FAMILIES) + " |"
  lines = [head, "|---" * (len(FAMILIES) + 1) + "|"]
  for row, group, pattern, source in rows:
    cells = []
    for i, fam in enumerate(FAMILIES):
      r = load(root, group, pattern.format(latent=fam))
      ours = "failed" if r is None else f"{r['recon']:.4g}"
      src = f"{source[i]:.4g}" if source and i < len(source) else "—"
      cells.append(f"{ours} ({src})")
    lines.append(f"| {row} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(root: str) -> None:
  print("## Report\n")
  print(report_table(root))
  print("\n## Table 4\n")
  print(family_row_table(root, [
      ("synthetic", "synthetic", "{latent}", STUDY_TABLE4["synthetic"]),
      ("MNIST", "heavy_tail", "{latent}", STUDY_TABLE4["heavy_tail"]),
      ("MNIST-exp", "mnist_exp", "{latent}", STUDY_TABLE4["mnist_exp"])], "dataset"))
  print("\n## Table 2\n")
  print(family_row_table(root, [(str(b), "beta", "{latent}-beta" + str(b), v)
                                for b, v in STUDY_TABLE2.items()], "beta"))
  print("\n## Table 5\n")
  print(family_row_table(root, [(n, "denoise", "{latent}-" + n, v)
                                for n, v in STUDY_TABLE5.items()], "noise"))
  print("\n## Table 6\n")
  print(family_row_table(root, [(n, "stacked", "{latent}-" + n, v)
                                for n, v in STUDY_TABLE6.items()], "noise channels"))


if __name__ == "__main__":
  main(sys.argv[1] if len(sys.argv) > 1 else "runs/repro")
