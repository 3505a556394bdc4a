"""experiments/seed_table.py: means, spreads and per-seed differences from run directories."""

import json
import os
import statistics
import subprocess
import sys

import pytest

import tiny


@pytest.fixture(scope="module")
def st():
  return tiny.experiment("seed_table")


def _run(root, name, nelbo, train_losses=(), finished=True, iwae=None):
  os.makedirs(os.path.join(root, name))
  metrics = {"elbo": -nelbo, "elbo_stderr": 0.5, "kl": 5.0, "finished": finished}
  if iwae is not None:
    metrics["iwae"] = -iwae
  with open(os.path.join(root, name, "test_metrics.json"), "w") as f:
    json.dump(metrics, f)
  with open(os.path.join(root, name, "metrics.jsonl"), "w") as f:
    for loss in train_losses:
      f.write(json.dumps({"split": "train", "loss": loss}) + "\n")
    f.write(json.dumps({"split": "test", "elbo": -nelbo}) + "\n")


def test_names_give_the_model_and_the_seed(st):
  assert st.model_and_seed("gaussian-cvae-transpose") == ("gaussian-cvae-transpose", 0)
  assert st.model_and_seed("gaussian-cvae-transpose-seed12") == ("gaussian-cvae-transpose", 12)
  assert st.model_and_seed("a-seed") == ("a-seed", 0)


def test_means_spreads_and_differences_match_the_statistics_module(st, tmp_path):
  root = str(tmp_path)
  g, p = [129.2, 130.1, 128.7], [145.0, 144.1, 146.3]
  for seed, (a, b) in enumerate(zip(g, p)):
    sfx = "" if seed == 0 else f"-seed{seed}"
    _run(root, "g" + sfx, a, train_losses=(200.0, a - 1), iwae=a - 2)
    _run(root, "p" + sfx, b, train_losses=(300.0, b - 1))
  _run(root, "p-seed3", 999.0, finished=False)  # unfinished: left out
  runs = st.collect(root)
  assert sorted(runs["p"]) == [0, 1, 2]
  assert runs["g"][1]["train_loss"] == pytest.approx(g[1] - 1)  # the last training line
  text = st.table(runs, [("g", "p")])
  row = next(l for l in text.splitlines() if l.startswith("| g |"))
  assert f"{statistics.mean(g):.2f} ± {statistics.stdev(g):.2f}" in row
  assert f"{statistics.mean(g) - 2:.2f} ± {statistics.stdev(g):.2f}" in row  # IWAE NLL
  diffs = [b - a for a, b in zip(g, p)]
  assert f"{statistics.mean(diffs):.2f} ± {statistics.stdev(diffs):.2f} over 3 seeds" in text
  assert "seed 1: +14.00" in text


def test_a_missing_root_is_one_error_line(tmp_path):
  script = os.path.join(os.path.dirname(__file__), os.pardir, "experiments", "seed_table.py")
  proc = subprocess.run([sys.executable, script, f"--root={tmp_path / 'none'}"],
                        capture_output=True,
                        text=True,
                        timeout=60)
  assert proc.returncode == 1 and "error: --root=" in proc.stderr
