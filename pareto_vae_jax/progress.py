"""A plain-text progress line with a rate and an ETA, for training steps and evaluation batches.

    progress = Progress(len(x), "iwae", unit="ex")
    for batch in batches:
      ...
      progress.update(len(batch), nll=value)
    progress.close()

prints, at most every ``every_seconds`` and always once at completion, lines such as

    iwae   1984/10000   19.8%  41.3 ex/s  ETA 3m14s  nll 95.12
    iwae  10000/10000  100.0%  41.1 ex/s  done in 4m03s  nll 94.87

In a log file or a notebook each report is a whole line. On a terminal (``live``: the stream
is a TTY) the line is redrawn in place every ``live_seconds`` instead, and ``say`` prints
other lines above it. ``enabled=False`` prints nothing: pass ``jax.process_index() == 0`` so
that only one process of a multi-host run reports.

The rate leaves out the first update: with a jitted function that update carries the
compilation, which would otherwise drag the rate (and lengthen the ETA) for the rest of the
run. From the second update on, the rate is ``(done - done at the first update) / (time since
the first update)``; until then it is the rate since the start, compilation included.
"""

from __future__ import annotations

import math
import numbers
import sys
import time
from typing import Callable, TextIO


def format_duration(seconds: float) -> str:
  """A short duration: ``45s``, ``1m24s``, ``2h03m`` (rounded to the second; "?" if unknown).

  Args:
    seconds: the duration; negative values count as 0, ``inf`` and ``nan`` as unknown.

  Returns:
    Seconds below a minute, minutes and seconds below an hour, else hours and minutes.

  >>> format_duration(84.4), format_duration(7380), format_duration(float("inf"))
  ('1m24s', '2h03m', '?')
  """
  if not math.isfinite(seconds):
    return "?"
  s = max(0, round(seconds))
  if s < 60:
    return f"{s}s"
  if s < 3600:
    return f"{s // 60}m{s % 60:02d}s"
  return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _format_rate(rate: float) -> str:
  if rate >= 100:
    return f"{rate:.0f}"
  if rate >= 1:
    return f"{rate:.1f}"
  return f"{rate:.2g}"


def _format_field(value) -> str:
  if isinstance(value, numbers.Integral):
    return str(value)
  try:  # Python, numpy and scalar jax floats alike
    return f"{float(value):.4g}"
  except (TypeError, ValueError):
    return str(value)


class Progress:
  """Counts work done towards ``total`` and prints a throttled line with the rate and ETA.

  Args:
    total: the amount of work, in the units ``update`` counts (steps, batches, examples).
    label: the first word of each line.
    every_seconds: the least time between two lines; completion is printed regardless.
    stream: where lines go; ``None`` is ``sys.stdout`` at the time of printing (so that
      redirections made after construction, such as pytest's, are followed).
    enabled: ``False`` prints nothing (the counting still happens).
    clock: seconds as a float; ``time.monotonic`` by default, a fake in tests.
    unit: the name of one unit of work in the rate (``it/s``).
    initial: the work already done when counting starts (a resumed run); it counts towards
      the fraction done but not towards the rate.
    live: redraw one line in place (carriage return) every ``live_seconds``; None: when the
      stream is a terminal.

  Also a context manager whose exit calls ``close``.
  """

  def __init__(self,
               total: int,
               label: str,
               *,
               every_seconds: float = 10.0,
               stream: TextIO | None = None,
               enabled: bool = True,
               clock: Callable[[], float] = time.monotonic,
               unit: str = "it",
               initial: int = 0,
               live: bool | None = None,
               live_seconds: float = 0.5):
    if total < 0:
      raise ValueError(f"Progress total must be >= 0; got {total}.")
    self.total = total
    self.label = label
    self.every_seconds = every_seconds
    self.enabled = enabled
    self.unit = unit
    self.done = initial
    self._stream = stream
    self._clock = clock
    self._start = clock()
    self._initial = initial
    self._first: tuple[float, int] | None = None  # (time, done) at the first update
    self._last_print = self._start
    self._now = self._start
    self._fields: dict = {}
    self._printed_latest = True  # nothing to report before the first update
    self._finished = False
    self._live = live
    self._live_seconds = live_seconds
    self._drawn = False  # a live line is on the screen, without its newline

  def rate(self) -> float | None:
    """Units per second as of the latest update (see the module docstring); None if unknown."""
    if self._first is not None and self._now > self._first[0]:
      return (self.done - self._first[1]) / (self._now - self._first[0])
    if self._now > self._start:
      return (self.done - self._initial) / (self._now - self._start)
    return None

  def eta(self) -> float:
    """Seconds left at the current rate as of the latest update; ``inf`` if unknown."""
    rate = self.rate()
    if self.done >= self.total:
      return 0.0
    return (self.total - self.done) / rate if rate else math.inf

  def line(self) -> str:
    """The report of the latest update, e.g. ``train  1200/4680  25.6%  41.3 it/s  ETA 1m24s``."""
    width = len(str(self.total))
    percent = 100.0 * self.done / self.total if self.total else 100.0
    rate = self.rate()
    parts = [
        self.label, f"{self.done:>{width}}/{self.total}", f"{percent:5.1f}%",
        f"{'?' if rate is None else _format_rate(rate)} {self.unit}/s"
    ]
    if self.done >= self.total:
      parts.append(f"done in {format_duration(self._now - self._start)}")
    else:
      parts.append(f"ETA {format_duration(self.eta())}")
    parts += [f"{name} {_format_field(value)}" for name, value in self._fields.items()]
    return "  ".join(parts)

  def update(self, n: int = 1, **fields) -> None:
    """Counts ``n`` more units; ``fields`` (e.g. ``loss=101.2``) are shown after the ETA.

    Prints when ``every_seconds`` have passed since the last line, and at the first update
    that reaches ``total``; nothing after that.
    """
    self._now = self._clock()
    self.done += n
    self._fields = fields
    if self._first is None:
      self._first = (self._now, self.done)
    if self._finished:  # completion was reported; later updates are not
      return
    if self.done >= self.total:
      self._finished = True
      self._print()
    elif self._now - self._last_print >= (self._live_seconds if self.live else self.every_seconds):
      self._print()
    else:
      self._printed_latest = False

  def close(self) -> None:
    """Prints the latest update if it was not printed (work stopped short of ``total``)."""
    if not self._printed_latest:
      self._print()
    if self._drawn and self.enabled:  # a live line stopped short: end it
      stream = self._stream or sys.stdout
      stream.write("\n")
      stream.flush()
      self._drawn = False

  @property
  def live(self) -> bool:
    if self._live is None:
      stream = self._stream or sys.stdout
      return bool(getattr(stream, "isatty", lambda: False)())
    return self._live

  def say(self, message: str) -> None:
    """Prints ``message`` as a line of its own (above a live line, which is redrawn after)."""
    if not self.enabled:
      return
    stream = self._stream or sys.stdout
    if self._drawn:
      stream.write("\r\033[K")
    print(message, file=stream, flush=True)
    if self._drawn:
      stream.write("\r\033[K" + self.line())
      stream.flush()

  def _print(self) -> None:
    self._last_print = self._now
    self._printed_latest = True
    if not self.enabled:
      return
    stream = self._stream or sys.stdout
    if not self.live:
      print(self.line(), file=stream, flush=True)
      return
    stream.write("\r\033[K" + self.line() + ("\n" if self._finished else ""))
    stream.flush()
    self._drawn = not self._finished

  def __enter__(self) -> Progress:
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
