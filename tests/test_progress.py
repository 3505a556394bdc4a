"""The progress line: exact rate and ETA under a fake clock, throttling, completion, durations;
and the evaluation loop that reports with it."""

from __future__ import annotations

import io

import numpy as np
import pytest

from pareto_vae_jax.progress import Progress, format_duration


class FakeClock:
  """A clock that moves only when told to."""

  def __init__(self):
    self.now = 0.0

  def __call__(self) -> float:
    return self.now


def _progress(total, clock, **kwargs):
  stream = io.StringIO()
  return Progress(total, "train", stream=stream, clock=clock, **kwargs), stream


def _lines(stream: io.StringIO) -> list[str]:
  return stream.getvalue().splitlines()


@pytest.mark.parametrize("seconds, expected", [
    (0, "0s"), (0.4, "0s"), (45, "45s"), (59.4, "59s"), (59.6, "1m00s"), (84, "1m24s"),
    (605, "10m05s"), (3599.4, "59m59s"), (3600, "1h00m"), (7380, "2h03m"), (7439, "2h03m"),
    (100 * 3600 + 60, "100h01m"), (-3, "0s"), (float("inf"), "?"), (float("nan"), "?"),
])
def test_format_duration_cases(seconds, expected):
  assert format_duration(seconds) == expected


def test_rate_and_eta_leave_out_the_first_update_that_carries_compilation():
  clock = FakeClock()
  progress, stream = _progress(4680, clock, every_seconds=0.0)
  clock.now = 30.0  # compilation, then the first 10 steps
  progress.update(10)
  assert progress.rate() == pytest.approx(10 / 30)  # only the start to go by so far
  clock.now = 30.0 + 20.0
  progress.update(1000, loss=101.25)
  # 1000 steps in the 20 s since the first update: 50 it/s; (4680 - 1010) / 50 = 73.4 s left.
  assert progress.rate() == 50.0
  assert progress.eta() == pytest.approx(73.4)
  assert _lines(stream)[-1] == "train  1010/4680   21.6%  50.0 it/s  ETA 1m13s  loss 101.2"


def test_initial_work_of_a_resumed_run_counts_towards_the_fraction_but_not_the_rate():
  clock = FakeClock()
  progress, stream = _progress(100, clock, every_seconds=0.0, initial=60)
  clock.now = 4.0
  progress.update(10)
  assert progress.rate() == 2.5
  assert _lines(stream) == ["train   70/100   70.0%  2.5 it/s  ETA 12s"]


def test_throttling_prints_once_per_interval_and_completion_always():
  clock = FakeClock()
  progress, stream = _progress(100, clock, every_seconds=10.0)
  for step in range(1, 101):  # one step per second
    clock.now = float(step)
    progress.update()
  progress.close()
  lines = _lines(stream)
  # At 10, 20, ..., 90 s (the counter starts at construction), then the completion at 100 s.
  assert len(lines) == 10
  assert [line.split()[1] for line in lines] == [f"{s}/100" for s in range(10, 91, 10)] + [
      "100/100"]
  assert lines[-1] == "train  100/100  100.0%  1.0 it/s  done in 1m40s"


def test_completion_prints_even_inside_the_interval_and_only_once():
  clock = FakeClock()
  progress, stream = _progress(3, clock, every_seconds=60.0)
  for t in (1.0, 2.0, 3.0):
    clock.now = t
    progress.update()
  clock.now = 4.0
  progress.update()  # beyond the total: no second completion line
  progress.close()
  assert _lines(stream) == ["train  3/3  100.0%  1.0 it/s  done in 3s"]


def test_close_reports_work_that_stopped_short_of_the_total():
  clock = FakeClock()
  with _progress(10, clock, every_seconds=60.0)[0] as progress:
    stream = progress._stream
    clock.now = 1.0
    progress.update(2)
    clock.now = 2.0
    progress.update(2)
    assert _lines(stream) == []
  assert _lines(stream) == ["train   4/10   40.0%  2.0 it/s  ETA 3s"]


def test_disabled_progress_prints_nothing_but_still_counts():
  clock = FakeClock()
  progress, stream = _progress(2, clock, enabled=False, every_seconds=0.0)
  clock.now = 1.0
  progress.update()
  clock.now = 2.0
  progress.update()
  progress.close()
  assert stream.getvalue() == ""
  assert progress.done == 2 and progress.rate() == 1.0


def test_unknown_rate_before_time_passes_shows_question_marks():
  clock = FakeClock()
  progress, stream = _progress(5, clock, every_seconds=0.0)
  progress.update()
  assert progress.rate() is None
  assert _lines(stream) == ["train  1/5   20.0%  ? it/s  ETA ?"]


def test_stream_none_follows_a_later_redirection_of_stdout(capsys):
  clock = FakeClock()
  progress = Progress(1, "eval", unit="ex", clock=clock)
  clock.now = 2.0
  progress.update(1, nll=94.8712)
  assert capsys.readouterr().out == "eval  1/1  100.0%  0.5 ex/s  done in 2s  nll 94.87\n"


def test_evaluation_reports_progress_without_changing_its_results(capsys):
  from pareto_vae_jax import vae

  def eval_fn(params, batch, key):  # per-example terms that identify the example
    x = np.asarray(batch["x"], np.float64)
    return {"elbo": x[:, 0], "recon": x[:, 1], "kl": x[:, 0] * x[:, 1], "iwae": x[:, 0] + 1}

  x = np.random.default_rng(0).normal(size=(103, 2)).astype(np.float32)
  y = np.zeros(103, np.int32)
  quiet = vae.evaluate(eval_fn, None, x, y, 10, None)
  assert capsys.readouterr().out == ""
  assert vae.evaluate(eval_fn, None, x, y, 10, None, progress=True) == quiet
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 1 and lines[0].startswith("  evaluate  103/103  100.0%  "), lines
  np.testing.assert_allclose(quiet["elbo"], x[:, 0].astype(np.float64).mean(), rtol=1e-12)
  vae.evaluate(eval_fn, None, x[:10], y[:10], 10, None, progress=True)  # one batch: silent
  assert capsys.readouterr().out == ""


class _Terminal(io.StringIO):
  def isatty(self) -> bool:
    return True


def test_on_a_terminal_the_line_is_redrawn_in_place_and_messages_go_above_it():
  clock, stream = FakeClock(), _Terminal()
  progress = Progress(10, "train", stream=stream, clock=clock, every_seconds=10.0)
  assert progress.live
  for _ in range(4):
    clock.now += 1.0
    progress.update(1)
  progress.say("epoch 1/2")
  clock.now += 1.0
  progress.update(6)
  text = stream.getvalue()
  # Every 0.5 s a redraw (not every 10 s), each with a carriage return and no newline until
  # the message, which ends the line, then the last redraw that completes.
  draws = text.split("\r\033[K")
  assert [d.split()[1] for d in draws if d.startswith("train")] == [
      "1/10", "2/10", "3/10", "4/10", "4/10", "10/10"]
  assert "epoch 1/2\n" in text and text.endswith("done in 5s\n")
  assert text.count("\n") == 2


def test_a_live_line_stopped_short_is_ended_by_close():
  clock, stream = FakeClock(), _Terminal()
  progress = Progress(10, "train", stream=stream, clock=clock)
  clock.now += 1.0
  progress.update(3)
  progress.close()
  assert stream.getvalue().endswith("3/10   30.0%  3.0 it/s  ETA 2s\n")


def test_not_a_terminal_whole_lines_throttled():
  clock, stream = FakeClock(), io.StringIO()
  progress = Progress(10, "train", stream=stream, clock=clock, every_seconds=10.0)
  assert not progress.live
  for _ in range(4):
    clock.now += 1.0
    progress.update(1)
  progress.say("epoch 1/2")
  assert "\r" not in stream.getvalue() and _lines(stream) == ["epoch 1/2"]
