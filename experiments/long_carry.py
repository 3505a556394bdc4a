#!/usr/bin/env python3
r"""Carries the long Gaussian runs between machines: one tar per run, its newest checkpoint.

The ``literature_long`` runs (docs/RESULTS.md, section 6b) train towards Burda et al.'s 3280
epochs over many sittings: on this machine's CPUs in the background (``launch/reproduce.sh``)
and on a lent GPU when there is one (``experiments/accelerator_batch.py``). What a resume
needs from a workdir is its newest whole checkpoint and ``config.json``; the rest (older
checkpoints, TensorBoard files, pictures) stays. ``pack`` writes one tar per run with that
checkpoint, ``config.json``, ``metrics.jsonl`` and every ``test_metrics*.json`` (the results
of the legs so far). ``unpack`` puts a tar's run into its workdir only when the tar's
checkpoint is newer than every step there, so a run that went further is never set back; it
then resumes from the tar's step bit for bit (tests/test_long_carry.py).

    python experiments/long_carry.py pack runs/repro/literature_long runs/long_carry
    python experiments/long_carry.py unpack runs/long_carry runs/repro/literature_long

A lent accelerator returns files of at most 16 MiB; the 512-256 Gaussian VAE's checkpoint with
its Adam moments is about 12 MB, so each run is one file.
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile

RETURN_LIMIT = 16 * 2**20  # bytes: the largest file a lent accelerator gives back
_DIGESTS = "files.sha256"  # pareto_vae_jax.checkpoint writes it once a step's save committed


def whole_steps(workdir: str) -> list[int]:
  """Checkpoint steps of `workdir` whose save finished (their digest list is written last)."""
  paths = glob.glob(os.path.join(workdir, "checkpoints", "*", _DIGESTS))
  steps = (os.path.basename(os.path.dirname(p)) for p in paths)
  return sorted(int(s) for s in steps if s.isdigit())


def pack(workdir: str, tar_path: str) -> int:
  """Writes `workdir`'s newest whole checkpoint and its records to `tar_path`; the step."""
  steps = whole_steps(workdir)
  if not steps:
    raise ValueError(f"{workdir} has no finished checkpoint to carry; train it first.")
  step = steps[-1]
  members = [os.path.join("checkpoints", str(step))]
  members += [
      name for name in ("config.json", "metrics.jsonl")
      if os.path.exists(os.path.join(workdir, name))
  ]
  members += sorted(
      os.path.basename(p) for p in glob.glob(os.path.join(workdir, "test_metrics*.json")))
  os.makedirs(os.path.dirname(os.path.abspath(tar_path)), exist_ok=True)
  tmp = tar_path + ".tmp"
  with tarfile.open(tmp, "w") as tar:
    for name in members:
      tar.add(os.path.join(workdir, name), arcname=name)
    note = json.dumps({"step": step, "from": os.path.abspath(workdir)}).encode()
    info = tarfile.TarInfo("carried.json")
    info.size = len(note)
    tar.addfile(info, io.BytesIO(note))
  os.replace(tmp, tar_path)
  return step


def carried_step(tar_path: str) -> int:
  with tarfile.open(tar_path) as tar:
    return json.load(tar.extractfile("carried.json"))["step"]


def unpack(tar_path: str, workdir: str) -> int | None:
  """Puts `tar_path`'s run into `workdir` if its step is newer than all there; the step or None.

  Records the tar holds replace the workdir's (they are the longer history); the workdir's
  older checkpoints stay, and the trainer restores the newest.
  """
  step = carried_step(tar_path)
  os.makedirs(workdir, exist_ok=True)
  present = glob.glob(os.path.join(workdir, "checkpoints", "*"))
  newest = max((int(os.path.basename(p)) for p in present if os.path.basename(p).isdigit()),
               default=-1)
  if newest >= step:
    return None
  with tempfile.TemporaryDirectory(dir=workdir) as tmp:
    with tarfile.open(tar_path) as tar:
      # The "data" filter (Python 3.11.4+) refuses links and paths out of the folder.
      safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
      tar.extractall(tmp, **safe)
    os.makedirs(os.path.join(workdir, "checkpoints"), exist_ok=True)
    shutil.move(os.path.join(tmp, "checkpoints", str(step)),
                os.path.join(workdir, "checkpoints", str(step)))
    for name in os.listdir(tmp):
      if name.endswith((".json", ".jsonl")) and name != "carried.json":
        os.replace(os.path.join(tmp, name), os.path.join(workdir, name))
  return step


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("verb", choices=("pack", "unpack"))
  p.add_argument("src", help="pack: a folder of run workdirs; unpack: a folder of tars")
  p.add_argument("dest", help="pack: the folder for the tars; unpack: the folder of workdirs")
  args = p.parse_args(argv)
  if args.verb == "pack":
    for workdir in sorted(glob.glob(os.path.join(args.src, "*", "checkpoints"))):
      workdir = os.path.dirname(workdir)
      tar_path = os.path.join(args.dest, os.path.basename(workdir) + ".tar")
      try:
        step = pack(workdir, tar_path)
      except ValueError as e:  # one run not saved yet does not stop the others
        print(f"skipped: {e}")
        continue
      size = os.path.getsize(tar_path)
      over = "  (over the 16 MiB a lent accelerator returns)" if size > RETURN_LIMIT else ""
      print(f"{tar_path}: step {step}, {size / 2**20:.1f} MiB{over}")
  else:
    for tar_path in sorted(glob.glob(os.path.join(args.src, "*.tar"))):
      workdir = os.path.join(args.dest, os.path.basename(tar_path)[:-len(".tar")])
      step = unpack(tar_path, workdir)
      print(f"{workdir}: " + (f"now at step {step}" if step is not None else
                              f"kept (it is at or past the tar's step {carried_step(tar_path)})"))
  return 0


if __name__ == "__main__":
  sys.exit(main())
