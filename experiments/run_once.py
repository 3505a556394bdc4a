"""Shared by the experiment scripts: train one run of ``pareto_vae_jax.main`` in a subprocess,
once, recording its command, exit status, wall time and load in ``<workdir>/wall.json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def train_once(workdir: str, flags: list[str]) -> dict:
  """Runs ``python -m pareto_vae_jax.main --workdir=<workdir> <flags>`` unless the run finished
  before (``test_metrics.json`` and ``wall.json`` present); returns its ``wall.json`` record."""
  info_path = os.path.join(workdir, "wall.json")
  if os.path.exists(os.path.join(workdir, "test_metrics.json")) and os.path.exists(info_path):
    with open(info_path) as f:
      return json.load(f)
  os.makedirs(workdir, exist_ok=True)
  cmd = [
      sys.executable, "-m", "pareto_vae_jax.main", *flags[:1], f"--workdir={workdir}", *flags[1:]
  ]
  start, load = time.time(), os.getloadavg()[0]
  with open(os.path.join(workdir, "train.log"), "w") as log:
    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
  info = {
      "command": " ".join(cmd[1:]),
      "returncode": proc.returncode,
      "wall_s": time.time() - start,
      "load_before": load,
      "load_after": os.getloadavg()[0],
  }
  if proc.returncode != 0:
    with open(os.path.join(workdir, "train.log")) as f:
      info["error"] = f.read()[-2000:]
  with open(info_path, "w") as f:
    json.dump(info, f, indent=1)
  print(f"  trained {workdir}: rc {proc.returncode}, {info['wall_s']:.0f} s", flush=True)
  return info
