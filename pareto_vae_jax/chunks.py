"""Where the trainer's compiled chunks of steps end, and when it saves.

An epoch runs as a few compiled calls (``steps_per_dispatch`` steps each): a checkpoint, a
pre-emption or a progress report can only happen between calls. These functions decide where
a chunk ends from the config alone, so that a resumed run cuts its chunks where an
uninterrupted one did (``tests/test_resume.py`` checks bit-identical resumes).
"""

from __future__ import annotations

import functools
import math

import jax


def uses_straight_line(config) -> bool:
  """Whether chunks are written out step by step rather than scanned (``_run_steps``)."""
  return config.architecture == "conv" and jax.default_backend() == "cpu"


def steps_per_dispatch(config, steps_per_epoch: int) -> int:
  """Steps per compiled call; chunks of steps end at its multiples (and at epoch ends).

  ``config.steps_per_dispatch`` when set. Else one step for conv models on CPU: a
  straight-line chunk is compiled for its length, and chunks of different lengths round
  differently, so one step per call keeps a resumed run bit-identical to an uninterrupted one
  whatever step it stopped at. Else about ``steps_per_epoch / config.chunks_per_epoch``, so
  that the progress line moves inside an epoch on every backend (``chunk_length``). A scanned
  chunk's steps round the same whatever its length, so only the time per call changes.

  With an explicit ``n`` on the straight-line path, resuming from checkpoints at multiples of
  n stays exact, but a stop elsewhere (``halt_after_steps``, ``checkpoint_every_steps`` not a
  multiple of n) changes the rounding after it.
  """
  if config.steps_per_dispatch:
    return config.steps_per_dispatch
  if uses_straight_line(config):
    return 1
  return chunk_length(steps_per_epoch, config.get("chunks_per_epoch", 1))


@functools.cache  # called once per chunk; the epoch's length does not change
def chunk_length(steps_per_epoch: int, chunks: int) -> int:
  """Steps per chunk for about ``chunks`` chunks per epoch; a divisor of the epoch if one is near.

  A divisor within a factor 1.5 of ``steps_per_epoch / chunks`` makes every chunk the same
  length (one compilation); otherwise the last chunk of each epoch is shorter (two).

  >>> chunk_length(468, 10), chunk_length(467, 10), chunk_length(468, 1)
  (52, 47, 468)
  """
  if chunks <= 1 or steps_per_epoch <= chunks:
    return steps_per_epoch if chunks <= 1 else 1
  target = steps_per_epoch / chunks
  divisors = [
      d for d in range(1, steps_per_epoch + 1)
      if steps_per_epoch % d == 0 and target / 1.5 <= d <= target * 1.5
  ]
  if divisors:
    return min(divisors, key=lambda d: (abs(math.log(d / target)), d))
  return math.ceil(target)


def chunk_end(config, step: int, steps_per_epoch: int, profile: tuple[int, int] | None) -> int:
  """Where the chunk that starts at ``step`` ends, as an offset into its epoch.

  A chunk ends at the epoch's end, at a multiple of ``steps_per_dispatch``, at a checkpoint
  step (``checkpoint_every_steps``), at ``halt_after_steps``, and at the edges of the profiled
  window (which forms chunks of its own).
  """
  offset = step % steps_per_epoch
  ends = [steps_per_epoch]
  dispatch = steps_per_dispatch(config, steps_per_epoch)
  ends.append((offset // dispatch + 1) * dispatch)
  if config.checkpoint_every_steps:
    every = config.checkpoint_every_steps
    ends.append(offset + every - step % every)
  if config.halt_after_steps:
    ends.append(offset + config.halt_after_steps - step)
  if profile and step < profile[1]:
    ends.append(offset + (profile[0] if step < profile[0] else profile[1]) - step)
  return min(ends)


def saves_after(config, step: int, steps_per_epoch: int) -> bool:
  """Whether a checkpoint is written once ``step`` steps are done.

  At every epoch end, every ``checkpoint_every_steps`` and at ``halt_after_steps``.
  """
  every, halt = config.checkpoint_every_steps, config.halt_after_steps
  return (step % steps_per_epoch == 0 or bool(every and step % every == 0) or
          bool(halt and step >= halt))
