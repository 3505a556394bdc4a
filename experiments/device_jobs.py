"""What the drivers of a lent accelerator share (``literature_nll.py``, ``accelerator_batch.py``):
reading a ``python -m pareto_vae_jax.main`` run's log and outputs while it runs."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile

# The trainer's line at the end of each epoch: "epoch 12/100  1683.0 steps/s ...".
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+)\s+([\d.]+) steps/s")


def new_lines(path: str, pos: int) -> tuple[list[str], int]:
  """The whole lines written to `path` after byte `pos`, and the position after them (a line
  still being written waits for the next call)."""
  if not path or not os.path.exists(path):
    return [], pos
  with open(path, "rb") as f:
    f.seek(pos)
    data = f.read()
  cut = data.rfind(b"\n") + 1
  return data[:cut].decode(errors="replace").splitlines(), pos + cut


def epoch_line(line: str) -> tuple[int, float] | None:
  """(epoch, steps/s) of an epoch line, else None."""
  m = EPOCH_LINE.match(line.strip())
  return (int(m.group(1)), float(m.group(3))) if m else None


def test_metrics(workdir: str) -> dict | None:
  """The run's test_metrics.json without its config, or None before it is written."""
  path = os.path.join(workdir, "test_metrics.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    metrics = json.load(f)
  metrics.pop("config", None)
  return metrics


def log_tail(path: str, n: int) -> list[str]:
  """The last `n` lines of a log, each cut to its last 300 characters."""
  if not path or not os.path.exists(path):
    return []
  with open(path, errors="replace") as f:
    return [line.rstrip()[-300:] for line in f.read().splitlines()[-n:]]


def add_log(tar: tarfile.TarFile, arcname: str, path: str, head: int, tail: int) -> None:
  """Adds the first `head` and last `tail` lines of the log at `path` to `tar` as `arcname`."""
  with open(path, errors="replace") as f:
    lines = f.read().splitlines()
  keep = "\n".join(lines[:head] + (["..."] if head else []) + lines[-tail:]).encode()
  info = tarfile.TarInfo(arcname)
  info.size = len(keep)
  tar.addfile(info, io.BytesIO(keep))
