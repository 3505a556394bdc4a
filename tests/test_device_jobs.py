"""experiments/device_jobs.py reads what the trainer writes, while it writes it."""

import json
import os
import subprocess
import sys

import tiny


def test_it_follows_a_real_runs_epoch_lines_and_reads_its_outputs(tmp_path):
  jobs = tiny.experiment("device_jobs")
  workdir, log = tmp_path / "run", str(tmp_path / "log.txt")
  with open(log, "w") as out:
    subprocess.run([
        sys.executable, "-m", "pareto_vae_jax.main", "--dataset=synthetic_lognormal",
        f"--workdir={workdir}", *tiny.cli_flags(num_epochs=3, summary_every_epochs=0)
    ],
                   stdout=out,
                   stderr=subprocess.STDOUT,
                   check=True,
                   timeout=300)
  lines, pos = jobs.new_lines(log, 0)
  assert pos == os.path.getsize(log)
  epochs = [jobs.epoch_line(l) for l in lines]
  assert [e[0] for e in epochs if e] == [1, 2, 3]  # the trainer's format, one line per epoch
  assert all(e[1] > 0 for e in epochs if e)
  # A line still being written waits; it is read once its newline arrives.
  with open(log, "a") as f:
    f.write("epoch 4/9  12.5 steps/s  ETA")
  assert jobs.new_lines(log, pos) == ([], pos)
  with open(log, "a") as f:
    f.write("  0s  loss 1.0\n")
  more, end = jobs.new_lines(log, pos)
  assert [jobs.epoch_line(l) for l in more] == [(4, 12.5)] and end == os.path.getsize(log)
  assert jobs.log_tail(log, 1) == [more[0][-300:]]
  # The test metrics, without the config they were written with.
  with open(workdir / "test_metrics.json") as f:
    written = json.load(f)
  metrics = jobs.test_metrics(str(workdir))
  assert "config" in written and "config" not in metrics
  assert metrics == {k: v for k, v in written.items() if k != "config"}
  assert jobs.test_metrics(str(tmp_path / "none")) is None
  assert jobs.new_lines(str(tmp_path / "none.txt"), 0) == ([], 0)


def test_add_log_keeps_the_head_and_tail_it_is_asked_for(tmp_path):
  import tarfile
  jobs = tiny.experiment("device_jobs")
  log = tmp_path / "log.txt"
  log.write_text("".join(f"line {i}\n" for i in range(100)))
  with tarfile.open(tmp_path / "t.tar", "w") as tar:
    jobs.add_log(tar, "a/log.txt", str(log), head=2, tail=3)
    jobs.add_log(tar, "b/log.txt", str(log), head=0, tail=1)
  with tarfile.open(tmp_path / "t.tar") as tar:
    a = tar.extractfile("a/log.txt").read().decode().splitlines()
    b = tar.extractfile("b/log.txt").read().decode().splitlines()
  assert a == ["line 0", "line 1", "...", "line 97", "line 98", "line 99"]
  assert b == ["line 99"]
