#!/usr/bin/env python3
r"""One call of a lent GPU, two workloads: the long Gaussian VAE and the heavy-tail study's seeds.

1. **The Gaussian VAE towards Burda et al.'s protocol** (docs/RESULTS.md, section 6): binarized
   MNIST, latent 32, 512-256 MLP, ``--config.lr_schedule=burda``, one run per seed, started
   with ``num_epochs = 3280`` (the paper's total). The schedule depends on the epoch only, so a
   run stopped at E epochs has had exactly the first E epochs of the 3280-epoch protocol. At
   ``--t-guard`` each run is sent SIGTERM (the trainer saves at the end of the epoch it is in
   and exits) and started again with ``num_epochs`` = the epochs it completed, which restores
   the checkpoint and evaluates the IWAE bound with k = 5000 over the 10k test digits.
   At each of ``--milestones`` (seconds) the newest whole checkpoint of the first seed is copied
   and evaluated the same way, so the NLL is also known at earlier epochs of the same run.
   Runs carried in (``--carry-in``, tars of ``experiments/long_carry.py``) go on from their
   step, and each run's newest checkpoint goes back out as ``<run>.tar`` (about 12 MB), so the
   protocol adds up over loans and the CPU's background legs.
2. **The heavy-tail study's tables 6, 5 and 2 for more seeds** (section 2): the commands of
   ``launch/reproduce.sh``'s ``stacked``, ``denoise`` and ``beta`` groups with ``--seed=s``,
   from a queue, at most ``--ht-parallel`` at once, none started after ``--t-ht-last``. A run
   not finished by ``--t-hard`` is killed and reported as unfinished (never used).

Outputs under --out (the accelerator tool returns few files): results.json (rewritten after
every event), summary.md, results.tar.gz (each run's test_metrics.json, config.json,
metrics.jsonl and log tail) and gaussian-burda-seed<s>.tar for each long run.

    python experiments/long_carry.py pack runs/repro/literature_long runs/long_carry  # here
    bash experiments/accelerator_batch.sh          # on the device; carry=[".whl", "runs/long_carry"]
    python experiments/long_carry.py unpack <the returned files> runs/repro/literature_long
    python experiments/accelerator_batch.py --out=/tmp/out --t-guard=60 --t-hard=150 \
        --ht-seeds=1 --ht-groups=stacked --ht-parallel=1 --long-seeds=0   # a CPU dry run

Deadlines count from ``$LNLL_T0`` (the wrapper's start), else from this script's start.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import device_jobs  # pylint: disable=wrong-import-position
import long_carry  # pylint: disable=wrong-import-position

T0 = float(os.environ.get("LNLL_T0") or time.time())
LONG_STEPS_PER_EPOCH = 468  # 60000 // 128
LONG_FLAGS = [  # launch/reproduce.sh's LIT_FLAGS and the Gaussian, under Burda et al.'s schedule
    "--dataset=mnist", "--config.binarize=True", "--noconditional", "--config.latent_dim=32",
    "--config.summary_every_epochs=0", "--latent=gaussian", "--config.lr_schedule=burda",
    "--config.chunks_per_epoch=1", "--config.eval_batch_size=25"
]
STUDY = [
    "--config=configs/heavy_tail_study.py", "--config.num_epochs=100",
    "--config.summary_every_epochs=0"
]
FAMILIES = ("gaussian", "lognormal", "inverse_gaussian")
NOISES = ("normal", "lognormal", "uniform", "inverse_gaussian")
BETAS = ("0.0", "0.01", "0.02", "0.03", "0.1", "0.2", "0.3")


def now() -> float:
  return time.time() - T0


def say(msg: str) -> None:
  print(f"[{now():6.1f}s] {msg}", flush=True)


def study_runs(group: str, seed: int) -> list[tuple[str, list[str]]]:
  """(group/name, flags) of one group of reproduce.sh's heavy-tail runs for `seed`."""
  runs = []
  for latent in FAMILIES:
    if group == "stacked":
      variants = [
          (f"{latent}-{n}", [f"--config.noise={n}", "--config.noise_channels=3"]) for n in NOISES
      ]
    elif group == "denoise":
      variants = [(f"{latent}-{n}", [f"--config.noise={n}"]) for n in NOISES]
    elif group == "beta":
      variants = [(f"{latent}-beta{b}", [f"--config.beta={b}"]) for b in BETAS]
    else:
      raise ValueError(f"unknown group {group!r}: stacked, denoise or beta")
    runs += [
        (f"{group}/{name}-seed{seed}", [f"--latent={latent}", *flags]) for name, flags in variants
    ]
  return runs


class Job:
  """One ``python -m pareto_vae_jax.main`` workdir, launched one or more times."""

  def __init__(self, name: str, flags: list[str], work: str, kind: str):
    self.name, self.flags, self.kind = name, flags, kind
    self.workdir = os.path.join(work, name)
    self.proc: subprocess.Popen | None = None
    self.log_path = ""
    self.log_pos = 0
    self.epoch = 0
    self.rate = None
    self.state = "queued"  # queued | training | evaluating | done | failed | killed
    self.events: list[str] = []
    self.signalled = False
    self.result: dict | None = None

  def launch(self, extra: list[str], env, cwd) -> None:
    os.makedirs(self.workdir, exist_ok=True)
    self.log_path = os.path.join(self.workdir, f"log_{len(self.events)}.txt")
    cmd = [
        sys.executable, "-m", "pareto_vae_jax.main", f"--workdir={self.workdir}", *self.flags,
        *extra
    ]
    with open(self.log_path, "w") as log:
      self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    self.log_pos, self.signalled = 0, False
    self.events.append(f"{now():.1f}s start: {' '.join(cmd[3:])}")

  def poll_log(self) -> None:
    lines, self.log_pos = device_jobs.new_lines(self.log_path, self.log_pos)
    for line in lines:
      found = device_jobs.epoch_line(line)
      if found:
        self.epoch, self.rate = found

  def running(self) -> bool:
    return self.proc is not None and self.proc.poll() is None

  def metrics(self) -> dict | None:
    return device_jobs.test_metrics(self.workdir)

  def saved_steps(self) -> list[int]:
    """Checkpoint steps whose save finished."""
    return long_carry.whole_steps(self.workdir)

  def tail(self, n: int = 4) -> list[str]:
    return device_jobs.log_tail(self.log_path, n)

  def record(self) -> dict:
    return {
        "kind": self.kind,
        "state": self.state,
        "flags": self.flags,
        "epoch_line": self.epoch,
        "steps_per_s": self.rate,
        "events": self.events,
        "result": self.result,
        "log_tail": self.tail()
    }


def copy_newest_checkpoint(job: Job, dest: str) -> int | None:
  """Copies `job`'s newest whole checkpoint into dest/checkpoints; its step, or None."""
  for step in reversed(job.saved_steps()):
    try:
      shutil.copytree(os.path.join(job.workdir, "checkpoints", str(step)),
                      os.path.join(dest, "checkpoints", str(step)))
      return step
    except (OSError, shutil.Error):  # deleted by the trainer's rotation meanwhile: the next one
      shutil.rmtree(os.path.join(dest, "checkpoints", str(step)), ignore_errors=True)
  return None


def main() -> int:
  p = argparse.ArgumentParser()
  p.add_argument("--out", required=True)
  p.add_argument("--work", default="/tmp/accel_batch")
  p.add_argument("--long-seeds", default="0,1,2")
  p.add_argument("--carry-in",
                 default="runs/long_carry",
                 help="tars of experiments/long_carry.py the long runs go on from, if present")
  p.add_argument("--milestones", default="150,300", help="seconds; '' for none")
  p.add_argument("--iwae", type=int, default=5000)
  p.add_argument("--ht-seeds", default="1,2")
  p.add_argument("--ht-groups", default="stacked,denoise,beta")
  p.add_argument("--ht-parallel", type=int, default=8)
  p.add_argument("--mem-fraction", default="0.04")
  p.add_argument("--t-ht-last", type=float, default=400.0)
  p.add_argument("--t-guard", type=float, default=470.0)
  p.add_argument("--t-hard", type=float, default=570.0)
  args = p.parse_args()
  os.makedirs(args.out, exist_ok=True)
  os.makedirs(args.work, exist_ok=True)
  cwd = os.getcwd()
  env = dict(os.environ)
  env.update({
      "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
      "XLA_PYTHON_CLIENT_MEM_FRACTION": args.mem_fraction,
      "PYTHONUNBUFFERED": "1"
  })

  long_jobs = [
      Job(f"literature_long/gaussian-burda-seed{s}",
          LONG_FLAGS + [f"--seed={s}", f"--config.iwae_samples={args.iwae}"], args.work, "long")
      for s in args.long_seeds.split(",")
      if s
  ]
  queue = [
      Job(name, STUDY + flags + [f"--seed={s}"], args.work, "study")
      for g in args.ht_groups.split(",") if g for s in args.ht_seeds.split(",") if s
      for name, flags in study_runs(g, int(s))
  ]
  milestones = sorted(float(t) for t in args.milestones.split(",") if t)
  jobs = list(long_jobs)
  for j in long_jobs:
    carried = os.path.join(args.carry_in, os.path.basename(j.name) + ".tar")
    if os.path.exists(carried):
      step = long_carry.unpack(carried, j.workdir)
      what = (f"carried in at step {step} (epoch {step // LONG_STEPS_PER_EPOCH})"
              if step is not None else f"kept: its workdir is at or past {carried}")
      j.events.append(f"{now():.1f}s {what}")
      say(f"{j.name}: {what}")
    j.launch(["--config.num_epochs=3280"], env, cwd)
    j.state = "training"
  say(f"{len(long_jobs)} long runs started; {len(queue)} study runs queued")

  def write(final: bool = False) -> None:
    out = {
        "t": round(now(), 1),
        "final": final,
        "settings": vars(args),
        "jobs": {
            j.name: j.record() for j in jobs
        },
        "never_started": [j.name for j in queue]
    }
    with open(os.path.join(args.out, "results.json.tmp"), "w") as f:
      json.dump(out, f, indent=1)
    os.replace(os.path.join(args.out, "results.json.tmp"), os.path.join(args.out, "results.json"))

  def evaluate(job: Job, step: int, why: str) -> None:
    job.events.append(f"{now():.1f}s evaluate step {step} ({why})")
    job.launch([f"--config.num_epochs={step // LONG_STEPS_PER_EPOCH}"], env, cwd)
    job.state = "evaluating"

  last_write = 0.0
  while True:
    for j in jobs:
      j.poll_log()
    # Exits.
    for j in jobs:
      if j.state not in ("training", "evaluating") or j.running():
        continue
      rc = j.proc.returncode
      m = j.metrics()
      j.events.append(f"{now():.1f}s exit rc={rc} after epoch line {j.epoch}")
      if rc == 0 and m is not None and m.get("finished", True):
        j.result, j.state = m, "done"
        if j.kind == "long":  # the leg's result travels with the run (long_carry.pack)
          shutil.copy(
              os.path.join(j.workdir, "test_metrics.json"),
              os.path.join(j.workdir, f"test_metrics_e{m['step'] // LONG_STEPS_PER_EPOCH}.json"))
        say(f"{j.name}: done, step {m['step']}, recon {m['recon']:.3f}, iwae {m['iwae']:.3f}")
      elif j.kind == "long" and j.state == "training" and j.saved_steps():
        evaluate(j, j.saved_steps()[-1], f"training ended rc={rc}")
      else:
        j.state = "failed"
        say(f"{j.name}: FAILED rc={rc}; {j.tail(3)}")
    # Milestone evaluations of the first long run: a copy of its newest checkpoint.
    if milestones and now() > milestones[0] and long_jobs:
      t = milestones.pop(0)
      dest = os.path.join(args.work, f"{long_jobs[0].name}-at{int(t)}s")
      step = copy_newest_checkpoint(long_jobs[0], dest)
      if step:
        m = Job(os.path.relpath(dest, args.work), long_jobs[0].flags, args.work, "milestone")
        evaluate(m, step, f"milestone {t:.0f}s")
        jobs.append(m)
        say(f"{m.name}: evaluating a copy of step {step} (epoch {step // LONG_STEPS_PER_EPOCH})")
    # The study's queue.
    busy = sum(j.running() for j in jobs if j.kind == "study")
    while queue and busy < args.ht_parallel and now() < args.t_ht_last:
      j = queue.pop(0)
      j.launch([], env, cwd)
      j.state, busy = "training", busy + 1
      jobs.append(j)
    # The guard: long runs stop at the end of their epoch, then evaluate.
    if now() > args.t_guard:
      for j in long_jobs:
        if j.state == "training" and j.running() and not j.signalled:
          j.proc.send_signal(signal.SIGTERM)
          j.signalled = True
          j.events.append(f"{now():.1f}s SIGTERM (guard) at epoch line {j.epoch}")
          say(f"{j.name}: SIGTERM at epoch line {j.epoch} ({j.rate} steps/s)")
    if now() > args.t_hard:
      for j in jobs:
        if j.running():
          j.proc.kill()
          j.proc.wait()
          j.state = "killed"
          j.events.append(f"{now():.1f}s killed at the hard stop (epoch line {j.epoch})")
      break
    if now() - last_write > 10:
      write()
      last_write = now()
    closed = not queue or now() >= args.t_ht_last  # no study run will start any more
    if closed and all(j.state in ("done", "failed", "killed") for j in jobs) and (
        not milestones or not any(j.state == "training" for j in long_jobs)):
      break
    time.sleep(0.25)

  write(final=True)
  lines = [
      "| run | state | epochs | steps/s (last) | test recon ± s.e. | NLL = -IWAE ± s.e. |",
      "|---|---|---:|---:|---:|---:|"
  ]
  for j in jobs:
    r = j.result or {}
    steps = r.get("step")
    spe = LONG_STEPS_PER_EPOCH if j.kind != "study" else 117
    lines.append(f"| {j.name} | {j.state} | {steps // spe if steps else j.epoch} | {j.rate} | " +
                 (f"{r['recon']:.4f} ± {r['recon_stderr']:.3f} | {-r['iwae']:.3f} ± "
                  f"{r['iwae_stderr']:.3f} |" if r else " | |"))
  table = "\n".join(lines)
  with open(os.path.join(args.out, "summary.md"), "w") as f:
    f.write(table + "\n")
  with tarfile.open(os.path.join(args.out, "results.tar.gz"), "w:gz") as tar:
    for j in jobs:
      for name in ("test_metrics.json", "config.json", "metrics.jsonl"):
        path = os.path.join(j.workdir, name)
        if os.path.exists(path):
          tar.add(path, arcname=f"{j.name}/{name}")
      for path in sorted(glob.glob(os.path.join(j.workdir, "log_*.txt"))):
        device_jobs.add_log(tar, f"{j.name}/{os.path.basename(path)}", path, head=5, tail=30)
  for j in long_jobs:  # each long run's newest checkpoint, for the next machine to go on from
    if long_carry.whole_steps(j.workdir):
      tar_path = os.path.join(args.out, os.path.basename(j.name) + ".tar")
      step = long_carry.pack(j.workdir, tar_path)
      say(f"{tar_path}: step {step}, {os.path.getsize(tar_path) / 2**20:.1f} MiB")
  say("SUMMARY\n" + table)
  return 0


if __name__ == "__main__":
  sys.exit(main())
