r"""Tables 2, 4, 5 and 6 of the heavy-tail study (seed 002) from this repository's runs.

Reads the ``test_metrics.json`` of the runs `launch/reproduce.sh` trains (groups ``heavy_tail``,
``beta``, ``denoise`` and ``stacked``) and prints each table as markdown, our test
reconstruction error (MATLAB's ``mse``: half the squared error summed over an image's pixels,
``likelihood=matlab_mse``) with its standard error over the test set, and the study's value in
parentheses. Table 4's MNIST row also gets the mean and sample standard deviation over the seeds
that finished (``<family>``, ``<family>-seed1``, ``<family>-seed2``), and so do tables 2, 5 and 6
once a seed besides 0 finished one of their runs (``<run>-seed1``, ``<run>-seed2``).

    python experiments/heavy_tail_tables.py --root=runs/repro [--out=runs/repro/tables.md]

A run that has not finished prints as "—" (or "(k/3 seeds)"): the tables fill in as runs end.
"""

from __future__ import annotations

import argparse
import json
import math
import os

FAMILIES = ("gaussian", "lognormal", "inverse_gaussian")
NAMES = {"gaussian": "Normal", "lognormal": "LogNormal", "inverse_gaussian": "Inverse Gaussian"}
NOISES = ("normal", "lognormal", "uniform", "inverse_gaussian")
BETAS = ("0.0", "0.01", "0.02", "0.03", "0.1", "0.2", "0.3")

# The study's tables (seed 002): row -> (Normal, LogNormal, Inverse Gaussian).
STUDY_TABLE_2 = {
    "0.0": (5.7492, 5.9889, 6.3569),
    "0.01": (5.6380, 6.0242, 6.3093),
    "0.02": (5.7418, 6.0074, 6.3297),
    "0.03": (5.8343, 6.1501, 6.4141),
    "0.1": (6.1855, 6.5709, 6.3293),
    "0.2": (6.7218, 7.5128, 6.3667),
    "0.3": (7.3572, 8.3121, 6.4305),
}
STUDY_TABLE_4_MNIST = (5.638, 6.024, 6.309)
STUDY_TABLE_5 = {
    "normal": (7.9923, 8.1758, 8.3661),
    "lognormal": (25.2696, 29.9268, 24.5316),
    "uniform": (16.5163, 24.0331, 8.7814),
    "inverse_gaussian": (26.3575, 32.5612, 20.6736),
}
STUDY_TABLE_6 = {
    "normal": (6.1330, 6.4419, 6.6628),
    "lognormal": (6.2493, 6.5027, 6.7255),
    "uniform": (6.3211, 6.5725, 6.8283),
    "inverse_gaussian": (6.4158, 6.7951, 6.7700),
}


def finished_metrics(run_dir: str) -> dict | None:
  """The run's test metrics if it finished training, else None."""
  path = os.path.join(run_dir, "test_metrics.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    metrics = json.load(f)
  return metrics if metrics.get("finished", True) else None


def cell(metrics: dict | None, study: float) -> str:
  if metrics is None:
    return f"— ({study:.4g})"
  return f"{metrics['recon']:.4g} ± {metrics['recon_stderr']:.2g} ({study:.4g})"


def mean_sd(values: list[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (nan for fewer than two values)."""
  mean = sum(values) / len(values)
  if len(values) < 2:
    return mean, math.nan
  return mean, math.sqrt(sum((v - mean)**2 for v in values) / (len(values) - 1))


def ordering(row: dict[str, dict | None]) -> str:
  """The families from best to worst, '<' where the gap exceeds twice the combined s.e., '~'
  where it does not; empty until every family finished."""
  if any(m is None for m in row.values()):
    return ""
  ranked = sorted(row, key=lambda f: row[f]["recon"])
  out = NAMES[ranked[0]]
  for a, b in zip(ranked, ranked[1:]):
    se = math.hypot(row[a]["recon_stderr"], row[b]["recon_stderr"])
    out += (" < " if row[b]["recon"] - row[a]["recon"] > 2 * se else " ~ ") + NAMES[b]
  return out


def grid_table(root: str,
               group: str,
               rows,
               study: dict,
               name_of,
               title: str,
               header: str = "") -> list[str]:
  """One table: a row per setting, a column per family, and the ordering in the last column."""
  lines = [
      f"### {title}", "", "| " + (header or group) + " | " +
      " | ".join(NAMES[f] for f in FAMILIES) + " | ordering (< : more than 2 s.e. apart) |",
      "|---|" + "---|" * (len(FAMILIES) + 1)
  ]
  for row in rows:
    found = {f: finished_metrics(os.path.join(root, group, name_of(f, row))) for f in FAMILIES}
    lines.append(f"| {row} | " +
                 " | ".join(cell(found[f], s) for f, s in zip(FAMILIES, study[row])) +
                 f" | {ordering(found)} |")
  return lines + [""]


def over_seeds(values: list[float], seeds: int, count: str) -> str:
  """'mean ± sd' of the finished seeds' values (the mean alone for one), and `count` formatted
  with (finished, seeds) when not every seed finished."""
  mean, sd = mean_sd(values)
  text = f"{mean:.4g}" + (f" ± {sd:.2g}" if len(values) > 1 else "")
  return text + ("" if len(values) == seeds else " " + count.format(len(values), seeds))


def seed_dir(name: str, seed: int) -> str:
  """Seed 0 keeps the plain run name; seeds 1, 2, ... add ``-seed<N>`` (launch/reproduce.sh)."""
  return name if seed == 0 else f"{name}-seed{seed}"


def seeds_ordering(per_seed: dict[str, dict[int, float]], seeds) -> str:
  """The families by their mean over seeds, '<' where the next family is worse in every seed
  both finished (at least two), '~' where the seeds disagree; empty until every family has a
  finished seed."""
  if any(not v for v in per_seed.values()):
    return ""
  mean = {f: sum(v.values()) / len(v) for f, v in per_seed.items()}
  ranked = sorted(per_seed, key=mean.get)
  out = NAMES[ranked[0]]
  for a, b in zip(ranked, ranked[1:]):
    common = [s for s in seeds if s in per_seed[a] and s in per_seed[b]]
    agree = len(common) >= 2 and all(per_seed[b][s] > per_seed[a][s] for s in common)
    out += (" < " if agree else " ~ ") + NAMES[b]
  return out


def seeds_grid_table(root: str,
                     group: str,
                     rows,
                     study: dict,
                     name_of,
                     title: str,
                     header: str = "",
                     seeds=(0, 1, 2)) -> list[str]:
  """`grid_table` over seeds: each cell the mean ± sample sd of the finished seeds (with their
  count when not all finished), the ordering by the means, '<' only where every seed agrees."""
  lines = [
      f"### {title}, mean ± sd over seeds {', '.join(map(str, seeds))}", "",
      "| " + (header or group) + " | " + " | ".join(NAMES[f] for f in FAMILIES) +
      " | the study | ordering (< : in every seed) |", "|---|" + "---|" * (len(FAMILIES) + 2)
  ]
  for row in rows:
    per_seed, cells = {}, []
    for f in FAMILIES:
      per_seed[f] = {}
      for s in seeds:
        m = finished_metrics(os.path.join(root, group, seed_dir(name_of(f, row), s)))
        if m is not None:
          per_seed[f][s] = m["recon"]
      values = list(per_seed[f].values())
      if not values:
        cells.append("—")
        continue
      cells.append(over_seeds(values, len(seeds), "({}/{})"))
    lines.append(f"| {row} | " + " | ".join(cells) + " | " +
                 " / ".join(f"{v:.4g}" for v in study[row]) +
                 f" | {seeds_ordering(per_seed, seeds)} |")
  return lines + [""]


def table_4(root: str, seeds=(0, 1, 2)) -> list[str]:
  lines = [
      "### Table 4, MNIST row, per seed and over seeds", "", "| family | " +
      " | ".join(f"seed {s}" for s in seeds) + " | mean ± sd over seeds | the study |",
      "|---|" + "---|" * (len(seeds) + 2)
  ]
  for f, study in zip(FAMILIES, STUDY_TABLE_4_MNIST):
    values, cells = [], []
    for s in seeds:
      m = finished_metrics(os.path.join(root, "heavy_tail", f if s == 0 else f"{f}-seed{s}"))
      cells.append("—" if m is None else f"{m['recon']:.4g} ± {m['recon_stderr']:.2g}")
      if m is not None:
        values.append(m["recon"])
    summary = over_seeds(values, len(seeds), "({}/{} seeds)") if values else "—"
    lines.append(f"| {NAMES[f]} | " + " | ".join(cells) + f" | {summary} | {study} |")
  return lines + [""]


def tables(root: str) -> str:
  """Table 4, then tables 2, 5 and 6 for seed 0 and, where a later seed finished a run of the
  group, over seeds."""
  lines = table_4(root)
  for args in (("beta", BETAS, STUDY_TABLE_2, lambda f, b: f"{f}-beta{b}",
                "Table 2: the beta sweep", "beta"),
               ("denoise", NOISES, STUDY_TABLE_5, lambda f, n: f"{f}-{n}",
                "Table 5: denoising, additive pixel noise", "noise"),
               ("stacked", NOISES, STUDY_TABLE_6, lambda f, n: f"{f}-{n}",
                "Table 6: denoising, stacked noise channels", "noise channels")):
    lines += grid_table(root, *args)
    group, rows, _, name_of = args[:4]
    if any(
        finished_metrics(os.path.join(root, group, seed_dir(name_of(f, r), s)))
        for f in FAMILIES
        for r in rows
        for s in (1, 2)):
      lines += seeds_grid_table(root, *args)
  return "\n".join(lines)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--root", default="runs/repro")
  parser.add_argument("--out", default="", help="also write the tables here")
  args = parser.parse_args()
  text = tables(args.root)
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  main()
