#!/usr/bin/env python3
r"""Binarized MNIST, NLL by importance sampling (k = 5000), 8 models x 3 seeds on one GPU.

One call of a lent accelerator, with a fixed budget of wall time, runs all the trainings at
once as separate ``python -m pareto_vae_jax.main`` processes. The number of epochs is chosen
inside the call, the same for every run:

1. Phase 1: every run starts with ``num_epochs = --emax`` (never reached). Once every run is
   training, their epoch rates under full contention are read from their epoch lines, and the
   common epoch count E that should let all of them finish by ``--t-plan`` is computed: the
   mean of two estimates, one that lets finished runs free their share of the GPU for the
   others (optimistic) and one that keeps every rate at its contended value (pessimistic),
   both after a start-up like phase 1's and a reserve of GPU time for the evaluations.
2. Every run is then sent SIGTERM: the trainer saves a checkpoint at the end of the epoch it is
   in and exits (its pre-emption path). It is started again with ``num_epochs = E``; it resumes
   (bit-identical to an uninterrupted run of E epochs: the data order depends on (seed, epoch),
   the optimizer has no schedule), trains to E and evaluates the test ELBO and IWAE bound.
3. Guard: a run still training at ``--t-guard`` is sent SIGTERM and evaluated from its last
   checkpoint (``num_epochs`` = the epochs it completed), as is a run that crashed after
   at least one epoch; its epoch count is reported. At ``--t-hard`` whatever still runs is killed.

Outputs under --out (at most 8 files: the accelerator tool returns no more): results.json
(rewritten after every event), summary.md, results.tar.gz (each run's test_metrics.json,
config.json and log tails).

    bash experiments/literature_nll.sh     # on the device: wheels, checks, then this script
    python experiments/literature_nll.py --out=/tmp/out --src=runs/literature_nll/src

Deadlines (``--t-*``) count from ``$LNLL_T0`` (the wrapper's start), else from this start.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import device_jobs  # pylint: disable=wrong-import-position

MODELS = {  # name: flags of pareto_vae_jax.main
    "gaussian": ["--latent=gaussian"],
    "pareto": ["--latent=pareto"],
    "pareto_learned_scale": ["--latent=pareto", "--config.pareto_posterior_scale=learned"],
    "lognormal": ["--latent=lognormal"],
    "inverse_gaussian": ["--latent=inverse_gaussian"],
    "student_t": ["--latent=student_t"],
    "iaf": ["--latent=iaf"],
    "gaussian_vamp": ["--latent=gaussian", "--prior=vamp"],
}
STEPS_PER_EPOCH = 468  # 60000 // 128
T0 = float(os.environ.get("LNLL_T0") or time.time())  # the wrapper's start: deadlines count from it


def now() -> float:
  return time.time() - T0


def say(msg: str) -> None:
  print(f"[{now():6.1f}s] {msg}", flush=True)


class Run:

  def __init__(self, model: str, seed: int, args):
    self.model, self.seed = model, seed
    self.name = f"{model}-seed{seed}"
    self.workdir = os.path.join(args.work, self.name)
    self.phase = "pending"  # p1 | p2 | p3 | done | failed | killed
    self.proc: subprocess.Popen | None = None
    self.log = None
    self.log_path = None
    self.log_pos = 0
    self.lines: list[tuple[float, int, float, str]] = []  # (t, epoch, steps/s, line) this launch
    self.launches: list[dict] = []
    self.signalled = False
    self.crashes = 0
    self.waiting = False  # p1 ended before the decision: start p2 once E is known
    self.result: dict | None = None
    self.events: list[str] = []
    self.last_line = None

  # ---------------------------------------------------------------- processes
  def launch(self, phase: str, num_epochs: int, args, env) -> None:
    os.makedirs(self.workdir, exist_ok=True)
    self.log_path = os.path.join(self.workdir, f"log_{phase}_{len(self.launches)}.txt")
    self.log = open(self.log_path, "w")
    cmd = [
        sys.executable, "-m", "pareto_vae_jax.main", "--dataset=mnist", "--config.binarize=True",
        *MODELS[self.model], "--noconditional", f"--workdir={self.workdir}",
        f"--config.num_epochs={num_epochs}", f"--config.iwae_samples={args.iwae}",
        f"--config.eval_batch_size={args.eval_batch}", "--config.summary_every_epochs=0",
        f"--config.latent_dim={args.latent_dim}", f"--config.seed={self.seed}",
        "--config.chunks_per_epoch=1"
    ]
    self.proc = subprocess.Popen(cmd,
                                 cwd=args.src,
                                 env=env,
                                 stdout=self.log,
                                 stderr=subprocess.STDOUT)
    self.phase, self.log_pos, self.lines, self.signalled = phase, 0, [], False
    self.launches.append({
        "phase": phase,
        "num_epochs": num_epochs,
        "start": round(now(), 1),
        "cmd": " ".join(cmd[1:])
    })
    say(f"{self.name}: start {phase} num_epochs={num_epochs} (pid {self.proc.pid})")

  def poll_log(self) -> None:
    lines, self.log_pos = device_jobs.new_lines(self.log_path, self.log_pos)
    for line in lines:
      found = device_jobs.epoch_line(line)
      if found:
        self.lines.append((now(), found[0], found[1], line.strip()))
        self.last_line = line.strip()

  def epochs_done(self) -> int:
    return self.lines[-1][1] if self.lines else 0

  def terminate(self, why: str) -> None:
    if self.proc and self.proc.poll() is None and not self.signalled:
      self.proc.send_signal(signal.SIGTERM)
      self.signalled = True
      self.events.append(f"{now():.1f}s SIGTERM ({why}) at epoch line {self.epochs_done()}")
      say(f"{self.name}: SIGTERM ({why}), last epoch line {self.epochs_done()}")

  def saved_step(self) -> int:
    steps = [
        int(os.path.basename(p))
        for p in glob.glob(os.path.join(self.workdir, "checkpoints", "*"))
        if os.path.basename(p).isdigit()
    ]
    return max(steps, default=0)

  def metrics(self) -> dict | None:
    return device_jobs.test_metrics(self.workdir)

  def tail(self, n: int = 6) -> list[str]:
    return device_jobs.log_tail(self.log_path, n)

  def record(self) -> dict:
    return {
        "model": self.model,
        "seed": self.seed,
        "phase": self.phase,
        "flags": MODELS[self.model],
        "launches": self.launches,
        "events": self.events,
        "last_epoch_line": self.last_line,
        "result": self.result,
        "log_tail": self.tail(4)
    }


def plan_epochs(runs: list[Run], t_all: float, args) -> tuple[int, dict]:
  """Common epoch count E from the runs' contended epoch rates (module docstring)."""
  active = [r for r in runs if r.phase == "p1" and r.proc and r.proc.poll() is None]
  n = max(len(active), 1)
  rates = {}
  for r in active:
    after = [x for x in r.lines if x[0] > t_all]
    if after:
      rates[r.name] = statistics.median(x[2] for x in after[-3:]) / STEPS_PER_EPOCH  # epochs/s
  info = {"t": round(now(), 1), "active": n, "rates_epochs_per_s": rates}
  if not rates:
    info["reason"] = "no rates measured: fallback"
    return args.e_fallback, info
  slowest = min(rates.values())
  costs = {r.name: 1.0 / (n * rates.get(r.name, slowest)) for r in active}  # GPU-s per epoch
  done = {r.name: r.epochs_done() + 1 for r in active}  # the epoch in progress completes
  starts = [r.launches[0]["start"] for r in active]
  first = [r.lines[0][0] - s for r, s in zip(active, starts) if r.lines]
  restart = statistics.median(first) if first else 60.0  # a relaunch's start, GPU mostly idle
  wall = args.t_plan - now() - restart
  # Shared GPU: runs that finish free their share for the others (optimistic when one process
  # alone leaves the GPU idle between its small kernels, as the MLP does).
  avail = args.safety * wall - args.eval_gpu_s * len(runs)
  e_shared = math.floor((avail + sum(done[k] * costs[k] for k in costs)) / sum(costs.values()))
  # Rates kept at their contended values to the end (pessimistic).
  e_const = math.floor(
      min(done[r.name] + rates.get(r.name, slowest) * args.safety * wall for r in active))
  e = (e_shared + e_const) // 2
  e_min = min(done.values())
  info.update({
      "restart_s": round(restart, 1),
      "wall_s": round(wall, 1),
      "avail_gpu_s": round(avail, 1),
      "sum_cost_per_epoch_s": round(sum(costs.values()), 3),
      "E_shared": e_shared,
      "E_constant_rates": e_const,
      "formula_E": e,
      "epochs_done_at_stop": done
  })
  e = max(min(e, args.emax - 1, args.e_cap), e_min, 1)
  info["E"] = e
  return e, info


def write_results(runs, args, decision, final=False) -> None:
  out = {
      "t": round(now(), 1),
      "final": final,
      "decision": decision,
      "settings": {
          k: v for k, v in vars(args).items()
      },
      "runs": {
          r.name: r.record() for r in runs
      }
  }
  tmp = os.path.join(args.out, "results.json.tmp")
  with open(tmp, "w") as f:
    json.dump(out, f, indent=1)
  os.replace(tmp, os.path.join(args.out, "results.json"))


def summary_table(runs) -> str:
  lines = [
      "| model | seeds done | epochs | test NLL = -IWAE (k=5000), mean ± std over seeds "
      "| per seed (± IS stderr) | -ELBO mean | KL mean |", "|---|---:|---|---:|---|---:|---:|"
  ]
  for model in MODELS:
    rs = [r for r in runs if r.model == model and r.result]
    if not rs:
      lines.append(f"| {model} | 0 | | | | | |")
      continue
    nll = [-r.result["iwae"] for r in rs]
    sd = statistics.stdev(nll) if len(nll) > 1 else float("nan")
    per = ", ".join(f"{-r.result['iwae']:.2f}±{r.result['iwae_stderr']:.2f}" for r in rs)
    ep = ",".join(str(r.result["step"] // STEPS_PER_EPOCH) for r in rs)
    lines.append(f"| {model} | {len(rs)} | {ep} | {statistics.mean(nll):.2f} ± {sd:.2f} | {per} "
                 f"| {statistics.mean(-r.result['elbo'] for r in rs):.2f} "
                 f"| {statistics.mean(r.result['kl'] for r in rs):.2f} |")
  return "\n".join(lines)


def main() -> int:
  p = argparse.ArgumentParser()
  p.add_argument("--out", required=True)
  p.add_argument("--src", required=True, help="folder holding the pareto_vae_jax to run")
  p.add_argument("--work", default="/tmp/lnll")
  p.add_argument("--pythonpath", default="", help="prepended to PYTHONPATH (besides --src)")
  p.add_argument("--models", default=",".join(MODELS))
  p.add_argument("--seeds", default="0,1,2")
  p.add_argument("--iwae", type=int, default=5000)
  p.add_argument("--eval-batch", type=int, default=10)
  p.add_argument("--latent-dim", type=int, default=32)
  p.add_argument("--mem-fraction", default="0.03")
  p.add_argument("--emax", type=int, default=1000)
  p.add_argument("--e-cap", type=int, default=3280)
  p.add_argument("--e-fallback", type=int, default=10)
  p.add_argument("--safety", type=float, default=0.85)
  p.add_argument("--eval-gpu-s", type=float, default=1.5, help="GPU-s reserved per evaluation")
  p.add_argument("--t-measure",
                 type=float,
                 default=25.0,
                 help="seconds of full contention to measure rates over")
  p.add_argument("--t-decide-max", type=float, default=200.0)
  p.add_argument("--t-plan", type=float, default=380.0)
  p.add_argument("--t-guard", type=float, default=420.0)
  p.add_argument("--t-hard", type=float, default=500.0)
  p.add_argument("--stagger", type=float, default=0.2)
  args = p.parse_args()
  args.src = os.path.abspath(args.src)
  os.makedirs(args.out, exist_ok=True)
  os.makedirs(args.work, exist_ok=True)
  env = dict(os.environ)
  env.update({
      "PYTHONPATH":
          ":".join(x for x in (args.pythonpath, args.src, env.get("PYTHONPATH", "")) if x),
      "XLA_PYTHON_CLIENT_PREALLOCATE":
          "false",
      "XLA_PYTHON_CLIENT_MEM_FRACTION":
          args.mem_fraction,
      "PVJ_KEEP_YNN_FUSION":
          "1",
      "PYTHONUNBUFFERED":
          "1"
  })
  which = subprocess.run([
      sys.executable, "-c", "import pareto_vae_jax, jax; "
      "print(pareto_vae_jax.__file__, jax.__version__, jax.devices())"
  ],
                         cwd=args.src,
                         env=env,
                         capture_output=True,
                         text=True)
  say(f"package check: {which.stdout.strip()} {which.stderr.strip()[-500:]}")
  if which.returncode:
    return 1

  runs = [Run(m, int(s), args) for m in args.models.split(",") for s in args.seeds.split(",")]
  for r in runs:
    r.launch("p1", args.emax, args, env)
    time.sleep(args.stagger)
  t_all = None  # when every live run had printed an epoch line
  E, decision = None, None

  def start_eval(r: Run, why: str) -> None:
    step = r.saved_step()
    if step >= STEPS_PER_EPOCH and now() < args.t_hard - 40:
      r.events.append(f"{now():.1f}s eval-only from step {step} ({why})")
      r.launch("p3", step // STEPS_PER_EPOCH, args, env)
    else:
      r.phase = "failed"
      r.events.append(f"{now():.1f}s failed ({why}; checkpoint step {step})")
      say(f"{r.name}: FAILED ({why}); tail: {r.tail(3)}")

  last_write = 0.0
  while True:
    for r in runs:
      r.poll_log()
    live = [r for r in runs if r.phase in ("p1", "p2", "p3")]
    # ---- exits
    for r in live:
      rc = r.proc.poll()
      if rc is None:
        continue
      r.log.close()
      r.launches[-1].update({"end": round(now(), 1), "rc": rc, "epoch_lines": r.epochs_done()})
      m = r.metrics()
      say(f"{r.name}: {r.phase} exited rc={rc}, epoch lines {r.epochs_done()}, "
          f"checkpoint step {r.saved_step()}, test metrics {'yes' if m else 'no'}")
      if m is not None and r.phase in ("p2", "p3") and rc == 0:
        r.result, r.phase = m, "done"
        say(f"{r.name}: DONE step {m['step']} iwae {m['iwae']:.3f} elbo {m['elbo']:.3f}")
        continue
      if r.phase == "p1":
        if not r.signalled:
          r.crashes += 1
          r.events.append(f"{now():.1f}s p1 crashed rc={rc}: {r.tail(3)}")
        if r.crashes > 1:
          start_eval(r, "crashed twice")
        elif E is None:
          r.phase, r.waiting = "waiting", True
        elif r.saved_step() >= E * STEPS_PER_EPOCH:
          start_eval(r, "p1 passed E")
        else:
          r.launch("p2", E, args, env)
      elif r.phase == "p2":
        start_eval(r, f"p2 ended rc={rc} without test metrics")
      else:
        r.phase = "failed"
        r.events.append(f"{now():.1f}s p3 failed rc={rc}: {r.tail(3)}")
        say(f"{r.name}: FAILED in p3 rc={rc}; tail: {r.tail(5)}")
    # ---- the decision
    p1 = [r for r in runs if r.phase == "p1"]
    if E is None:
      if t_all is None and p1 and all(r.lines for r in p1):
        t_all = now()
        say(f"all {len(p1)} live runs are training; measuring rates for {args.t_measure}s")
      ready = (t_all is not None and now() > t_all + args.t_measure and
               all(sum(x[0] > t_all for x in r.lines) >= 2 for r in p1))
      if ready or now() > args.t_decide_max or (not p1 and any(r.waiting for r in runs)):
        E, decision = plan_epochs(runs, t_all if t_all is not None else 0.0, args)
        say(f"DECISION: E = {E} epochs; {json.dumps(decision)}")
        for r in runs:
          if r.phase == "waiting":
            r.waiting = False
            r.launch("p2", E, args, env)
    if E is not None:
      for r in runs:
        if r.phase == "p1" and r.lines:  # the SIGTERM handler is installed: stop at epoch end
          r.terminate("E decided")
    # ---- the guard and the hard stop
    if now() > args.t_guard:
      for r in runs:
        if r.phase in ("p1", "p2") and r.epochs_done() < (E or args.emax):
          if r.lines:
            r.terminate("guard")
          elif r.proc and r.proc.poll() is None and not r.signalled:  # no handler yet
            r.proc.kill()
            r.signalled = True
            r.events.append(f"{now():.1f}s killed by the guard before its first epoch line")
    if now() > args.t_hard:
      for r in runs:
        if r.phase in ("p1", "p2", "p3") and r.proc.poll() is None:
          r.proc.kill()
          r.phase = "killed"
          r.events.append(f"{now():.1f}s killed at the hard stop")
          say(f"{r.name}: KILLED at the hard stop")
    if now() - last_write > 10:
      write_results(runs, args, decision)
      last_write = now()
    if all(r.phase in ("done", "failed", "killed") for r in runs):
      break
    time.sleep(0.25)

  write_results(runs, args, decision, final=True)
  table = summary_table(runs)
  with open(os.path.join(args.out, "summary.md"), "w") as f:
    f.write(f"E = {E}; decision: {json.dumps(decision)}\n\n{table}\n")
  with tarfile.open(os.path.join(args.out, "results.tar.gz"), "w:gz") as tar:
    for r in runs:
      for name in ("test_metrics.json", "config.json"):
        path = os.path.join(r.workdir, name)
        if os.path.exists(path):
          tar.add(path, arcname=f"{r.name}/{name}")
      paths = sorted(glob.glob(os.path.join(r.workdir, "log_*.txt")))
      paths += glob.glob(os.path.join(r.workdir, "metrics.jsonl"))
      for path in paths:
        jsonl = path.endswith(".jsonl")
        device_jobs.add_log(tar,
                            f"{r.name}/{os.path.basename(path)}",
                            path,
                            head=0 if jsonl else 3,
                            tail=4 if jsonl else 40)
  say("SUMMARY\n" + table)
  return 0


if __name__ == "__main__":
  sys.exit(main())
