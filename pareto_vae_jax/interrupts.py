"""What may stop or watch the training loop between chunks: pre-emption and the profiler."""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import jax


class Preempted(Exception):
  """Training stopped at a pre-emption notice after saving a checkpoint at ``step``."""

  def __init__(self, step: int):
    super().__init__(f"Pre-empted: saved a checkpoint at step {step}; the same command "
                     "resumes from it.")
    self.step = step


class PreemptionWatch:
  """Notices pre-emption: SIGTERM (one process) or Orbax's sync point (several processes).

  A spot/pre-emptible VM, Slurm's pre-emption and Kubernetes all send SIGTERM and give the
  process some seconds before SIGKILL. In one process the handler only sets a flag, which the
  loop reads after each chunk (a fraction of an epoch, ``steps_per_dispatch``), saves and
  stops. Several processes must stop at the same step: there JAX's distributed service hears
  the signal and ``Checkpointer.reached_preemption`` says when all agree, so no handler is
  installed (it would shadow JAX's). ``restore`` puts the previous handler back.
  """

  def __init__(self, checkpointer):
    self._checkpointer = checkpointer
    self._signalled = False
    self._previous = None

  def install(self) -> PreemptionWatch:
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._on_signal)
    return self

  def restore(self) -> None:
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
      self._previous = None

  def _on_signal(self, signum, frame) -> None:
    del signum, frame
    self._signalled = True

  def reached(self, step: int) -> bool:
    """Whether to save at ``step`` and stop."""
    if jax.process_count() > 1:
      return self._checkpointer.reached_preemption(step)
    return self._signalled


def profile_window(config, step: int) -> tuple[int, int] | None:
  """``[first, end)`` steps to trace with ``jax.profiler`` (``config.profile_steps``), or None.

  ``profile_steps = "a:b"`` traces steps a..b-1; a number n traces n steps after the first
  (which compiles). A window already behind a resumed run is skipped.
  """
  spec = str(config.get("profile_steps", "") or "")
  if not spec or spec == "0":
    return None
  try:
    if ":" in spec:
      first, end = (int(v) for v in spec.split(":"))
    else:
      first, end = 1, 1 + int(spec)
  except ValueError:
    raise ValueError(f"profile_steps={spec!r}: give a count n (steps 1..n) or a range 'a:b'; "
                     "e.g. --profile_steps=5 or --profile_steps=10:15.") from None
  if not 0 <= first < end:
    raise ValueError(f"profile_steps={spec!r} is an empty range; give 'a:b' with a < b.")
  return (first, end) if first >= step else None


@contextlib.contextmanager
def profiled(workdir: str, window: tuple[int, int] | None, step: int, end: int, say):
  """Traces the chunk ``[step, end)`` with ``jax.profiler`` when it is the profiled window.

  The window forms chunks of its own (``chunks.chunk_end``), so a chunk is traced whole or not
  at all; ``say`` reports where the trace went.
  """
  if not window or step != window[0]:
    yield lambda state: None
    return
  directory = os.path.join(workdir, "profile")
  jax.profiler.start_trace(directory)
  try:
    yield jax.block_until_ready  # called on the chunk's output: the trace covers its work
  finally:
    jax.profiler.stop_trace()
    say(f"Profiled steps {window[0]}-{window[1] - 1} into {directory} (open with TensorBoard's "
        "profile plugin or Perfetto).")
