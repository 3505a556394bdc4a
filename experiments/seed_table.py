r"""Mean and spread over seeds of the runs in one group directory, and per-seed differences.

A group (``runs/repro/report_conv``, say) holds seed 0 of a model as ``<model>/`` and the other
seeds as ``<model>-seed<N>/`` (the names ``launch/reproduce.sh`` gives). For every model this
prints, over the seeds that finished, the last training epoch's loss and the test -ELBO, KL and
IWAE NLL of ``test_metrics.json``: mean ± standard deviation over seeds, and each seed's value
with its standard error over the test set. ``--pairs=a:b,...`` adds, for each pair, the per-seed
difference b - a of the test -ELBO (seeds both finished), its mean and sd.

    python experiments/seed_table.py --root=runs/repro/report_conv \
        --pairs=gaussian-cvae-transpose:pareto-cvae-transpose
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re

_SEED = re.compile(r"^(?P<model>.+)-seed(?P<seed>\d+)$")


def model_and_seed(name: str) -> tuple[str, int]:
  """``("m", 2)`` for ``m-seed2``; ``("m", 0)`` for ``m``."""
  match = _SEED.match(name)
  if match:
    return match["model"], int(match["seed"])
  return name, 0


def _last_train_loss(run: str) -> float | None:
  loss = None
  path = os.path.join(run, "metrics.jsonl")
  if os.path.exists(path):
    with open(path) as f:
      for line in f:
        record = json.loads(line)
        if record.get("split") == "train" and "loss" in record:
          loss = record["loss"]
  return loss


def collect(root: str) -> dict[str, dict[int, dict]]:
  """``{model: {seed: metrics}}`` of the finished runs under ``root``."""
  out: dict[str, dict[int, dict]] = {}
  for name in sorted(os.listdir(root)):
    run = os.path.join(root, name)
    path = os.path.join(run, "test_metrics.json")
    if not os.path.isdir(run) or not os.path.exists(path):
      continue
    with open(path) as f:
      metrics = json.load(f)
    if not metrics.get("finished", True):
      continue
    model, seed = model_and_seed(name)
    out.setdefault(model, {})[seed] = {
        "train_loss": _last_train_loss(run),
        "nelbo": -metrics["elbo"],
        "nelbo_se": metrics.get("elbo_stderr", float("nan")),
        "kl": metrics["kl"],
        "nll": -metrics["iwae"] if "iwae" in metrics else float("nan"),
        "nll_se": metrics.get("iwae_stderr", float("nan")),
    }
  return out


def mean_sd(values: list[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (nan for one value)."""
  n = len(values)
  mean = sum(values) / n
  sd = math.sqrt(sum((v - mean)**2 for v in values) / (n - 1)) if n > 1 else float("nan")
  return mean, sd


def _fmt(mean: float, sd: float) -> str:
  return f"{mean:.2f}" if math.isnan(sd) else f"{mean:.2f} ± {sd:.2f}"


def table(runs: dict[str, dict[int, dict]], pairs: list[tuple[str, str]]) -> str:
  lines = [
      "| model | seeds | last training epoch, loss | test -ELBO | test KL | test IWAE NLL | "
      "per seed: test -ELBO (± s.e. over the test set) |", "|---|---|---|---|---|---|---|"
  ]
  for model, seeds in runs.items():
    order = sorted(seeds)
    cells = []
    for key in ("train_loss", "nelbo", "kl", "nll"):
      values = [seeds[s][key] for s in order if seeds[s][key] is not None]
      cells.append(_fmt(*mean_sd(values)) if values else "—")
    per_seed = ", ".join(
        f"{s}: {seeds[s]['nelbo']:.2f} ({seeds[s]['nelbo_se']:.2f})" for s in order)
    lines.append(f"| {model} | {len(order)} | " + " | ".join(cells) + f" | {per_seed} |")
  for a, b in pairs:
    common = sorted(set(runs.get(a, {})) & set(runs.get(b, {})))
    if not common:
      lines.append(f"\n{b} - {a}: no seed finished both.")
      continue
    diffs = [runs[b][s]["nelbo"] - runs[a][s]["nelbo"] for s in common]
    per_seed = ", ".join(f"seed {s}: {d:+.2f}" for s, d in zip(common, diffs))
    lines.append(f"\ntest -ELBO, {b} minus {a}: {_fmt(*mean_sd(diffs))} over {len(common)} "
                 f"seeds ({per_seed}).")
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--root", required=True, help="the group directory")
  parser.add_argument("--pairs", default="", help="a:b,c:d — per-seed differences b - a")
  parser.add_argument("--out", default="", help="also write the table here")
  args = parser.parse_args()
  if not os.path.isdir(args.root):
    raise SystemExit(f"error: --root={args.root} is not a directory; pass a group directory such "
                     "as runs/repro/report_conv.")
  pairs = [tuple(p.split(":", 1)) for p in args.pairs.split(",") if p]
  if any(len(p) != 2 for p in pairs):
    raise SystemExit("error: --pairs takes a:b pairs separated by commas, e.g. "
                     "--pairs=gaussian-cvae-transpose:pareto-cvae-transpose.")
  text = table(collect(args.root), pairs)
  print(text)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text)


if __name__ == "__main__":
  main()
