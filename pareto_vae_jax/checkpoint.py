"""Checkpointing of training state with Orbax.

A thin wrapper around ``orbax.checkpoint.CheckpointManager`` that adds the
three things a resumable training run needs and Orbax does not give directly:

* fallback: if the newest step cannot be read (a crash mid-write, a truncated
  file) the previous step is tried, and so on;
* a compatibility check: a work directory that holds checkpoints of a
  *different* model (other latent family, latent size, architecture, ...) is
  refused with :class:`IncompatibleCheckpointError` before anything is
  written or deleted, instead of being silently restarted and garbage
  collected;
* typed PRNG keys (``jax.random.key``) in the state, stored as their raw key
  data so the on-disk format does not depend on Orbax's key support.

Each step directory holds two items: ``state`` (any pytree of arrays and
scalars, via ``StandardSave``) and ``meta`` (a JSON dict, e.g. the config, the
RNG seed and the data-order position).

Typical use::

    with Checkpointer(workdir, max_to_keep=3) as ckpt:
        restored = ckpt.restore_latest(state, meta, compat_keys=("config.latent",))
        if restored is not None:
            state, meta, step = restored
        ...
        ckpt.save(step, state, meta)
"""

from __future__ import annotations

import collections
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

PyTree = Any

_STATE = "state"
_META = "meta"
_MISSING = "<missing>"


class IncompatibleCheckpointError(ValueError):
  """The checkpoint directory holds checkpoints of a different model."""


def _is_typed_key(x: Any) -> bool:
  return isinstance(x, jax.Array) and jax.dtypes.issubdtype(
      x.dtype, jax.dtypes.prng_key
  )


def _keys_to_data(tree: PyTree) -> PyTree:
  """Replaces typed PRNG keys by their uint32 key data.

  Orbax's support for typed keys differs between versions; raw key data is a
  plain uint32 array that every version stores the same way.
  """
  return jax.tree.map(
      lambda x: jax.random.key_data(x) if _is_typed_key(x) else x, tree
  )


def _data_to_keys(restored: PyTree, target: PyTree) -> PyTree:
  """Wraps key data back into typed keys wherever `target` has a typed key."""
  return jax.tree.map(
      lambda r, t: (
          jax.random.wrap_key_data(r, impl=jax.random.key_impl(t))
          if _is_typed_key(t)
          else r
      ),
      restored,
      target,
  )


def _json_copy(meta: Mapping[str, Any]) -> dict[str, Any]:
  """Round-trips through JSON: fails early on unserialisable values, detaches
  the copy from later mutation by the caller (saves may be asynchronous), and
  makes tuples compare equal to the lists JSON gives back."""
  return json.loads(json.dumps(dict(meta)))


def _lookup(meta: Mapping[str, Any], dotted_key: str) -> Any:
  """`meta["a"]["b"]` for key "a.b", or `_MISSING`."""
  node: Any = meta
  for part in dotted_key.split("."):
    if not isinstance(node, Mapping) or part not in node:
      return _MISSING
    node = node[part]
  return node


def _leaf_shapes(tree: PyTree) -> collections.Counter[tuple[int, ...]]:
  """Multiset of leaf shapes. Orbax's metadata tree turns namedtuples (optax
  states) into dicts, so paths and order differ from the target's; the shapes
  alone still catch a changed architecture or latent size."""
  return collections.Counter(tuple(np.shape(x)) for x in jax.tree.leaves(tree))


class Checkpointer:
  """Saves and restores (state pytree, JSON meta) pairs in one directory.

  Call :meth:`restore_latest` before the first :meth:`save`: it performs the
  compatibility check, and :meth:`save` refuses to write into a directory that
  already holds checkpoints until that check has passed (a save may garbage
  collect old steps).
  """

  def __init__(
      self,
      directory: str | os.PathLike[str],
      *,
      max_to_keep: int | None = 3,
      save_interval_steps: int = 1,
      async_save: bool = True,
  ) -> None:
    """Opens (and creates if absent) a checkpoint directory.

    Args:
      directory: Root directory; each step is a subdirectory named by step.
      max_to_keep: Number of most recent steps kept; None keeps all.
      save_interval_steps: `save` only writes steps that are a multiple of
        this, unless `force=True`.
      async_save: Write in a background thread so training is not blocked.
        `close()` (or leaving the `with` block) waits for pending writes.
    """
    self.directory = os.path.abspath(os.fspath(directory))
    # Opening the manager only lists steps; with no root `metadata` given and
    # cleanup_tmp_directories off it writes or deletes nothing in an existing
    # directory, which the compatibility guarantee relies on.
    self._manager = ocp.CheckpointManager(
        self.directory,
        item_handlers={
            _STATE: ocp.StandardCheckpointHandler(),
            _META: ocp.JsonCheckpointHandler(),
        },
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            save_interval_steps=save_interval_steps,
            enable_async_checkpointing=async_save,
            create=True,
        ),
    )
    self._checked = False
    # Steps restore_latest had to skip. They sort after the step training
    # resumes from, so Orbax would refuse to save those step numbers again and
    # would garbage-collect good older steps before them; save() deletes them.
    self._unreadable: list[int] = []

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc_info: Any) -> None:
    self.close()

  def close(self) -> None:
    """Waits for pending asynchronous saves and releases resources."""
    self._manager.close()

  def latest_step(self) -> int | None:
    """Returns the newest saved step (readable or not), or None if none."""
    self._manager.wait_until_finished()
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    """Returns all saved steps, ascending."""
    self._manager.wait_until_finished()
    return sorted(self._manager.all_steps())

  def latest_meta(self) -> tuple[int, dict[str, Any]] | None:
    """``(step, meta)`` of the newest step whose meta reads, or None; reads no arrays.

    For tools that must rebuild the model (from ``meta["config"]``) before they can give
    :meth:`restore_latest` a target.
    """
    self._manager.wait_until_finished()
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        meta = self._manager.restore(
            step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()})
        )[_META]
      except Exception as e:  # pylint: disable=broad-except
        self._warn_unreadable(step, e)
        continue
      return step, dict(meta)
    return None

  def wait_until_finished(self) -> None:
    """Blocks until an asynchronous save has been written whole."""
    self._manager.wait_until_finished()

  def reached_preemption(self, step: int) -> bool:
    """Whether every process of a multi-process run has reached the pre-emption sync point.

    Orbax's ``reached_preemption``: JAX's distributed service hears the scheduler's notice
    (SIGTERM, or a TPU VM's maintenance event) and has all processes agree on one step; False
    in a single process, where ``train.PreemptionWatch`` catches SIGTERM itself.
    """
    return self._manager.reached_preemption(step)

  def save(
      self,
      step: int,
      state: PyTree,
      meta: Mapping[str, Any],
      *,
      force: bool = False,
  ) -> bool:
    """Saves `state` and `meta` as `step`, then drops steps beyond max_to_keep.

    Unreadable steps skipped by the last `restore_latest` are deleted first.

    Args:
      step: Training step; must be larger than every saved step.
      state: Pytree of arrays / scalars; may contain typed PRNG keys.
      meta: JSON-serialisable dict (config, seed, epoch, index, ...).
      force: Save even if `step` is not a multiple of `save_interval_steps`.

    Returns:
      True if a checkpoint was written (or started, when asynchronous).

    Raises:
      RuntimeError: the directory already holds checkpoints and
        `restore_latest` has not checked them yet.
      TypeError: `meta` is not JSON-serialisable.
    """
    if not self._checked and self._manager.all_steps():
      raise RuntimeError(
          f"{self.directory} already holds checkpoints; call restore_latest() "
          "first so they are checked for compatibility before a save can "
          "garbage-collect them."
      )
    for bad_step in self._unreadable:
      logging.warning(
          "Deleting unreadable checkpoint step %d in %s.", bad_step,
          self.directory,
      )
      self._manager.delete(bad_step)
    self._unreadable = []
    return self._manager.save(
        step,
        args=ocp.args.Composite(
            **{
                _STATE: ocp.args.StandardSave(_keys_to_data(state)),
                _META: ocp.args.JsonSave(_json_copy(meta)),
            }
        ),
        force=force,
    )

  def restore_latest(
      self,
      target: PyTree,
      expected_meta: Mapping[str, Any],
      *,
      compat_keys: Sequence[str] = (),
  ) -> tuple[PyTree, dict[str, Any], int] | None:
    """Restores the newest readable checkpoint into the structure of `target`.

    Steps are tried newest first; a step that raises while being read is
    logged as a warning and skipped. Before any state is read, the saved meta
    is compared with `expected_meta` on `compat_keys`, and the saved array
    shapes with `target`'s.

    Args:
      target: Pytree with the structure, shapes and dtypes to restore into
        (e.g. a freshly initialised train state). Typed PRNG keys in it are
        restored as typed keys of the same implementation.
      expected_meta: The meta of the current run.
      compat_keys: Model-defining keys, compared between the saved meta and
        `expected_meta`; dotted keys address nested dicts ("config.latent").

    Returns:
      `(state, meta, step)` of the newest usable step, or None if the
      directory holds no usable checkpoint.

    Raises:
      IncompatibleCheckpointError: the newest readable checkpoint was saved
        by a different model. Nothing is written or deleted.
    """
    self._manager.wait_until_finished()
    expected = _json_copy(expected_meta)
    storable_target = _keys_to_data(target)
    self._unreadable = []
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        meta = self._manager.restore(
            step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()})
        )[_META]
        # Metadata first: a shape mismatch must be reported as incompatible,
        # not mistaken for damage (which would skip to older steps and, if
        # none is left, start over and later garbage-collect the old run).
        saved_tree = self._manager.item_metadata(step)[_STATE]
        saved_tree = getattr(saved_tree, "tree", saved_tree)  # Orbax >= 0.11.
      except Exception as e:  # pylint: disable=broad-except
        self._warn_unreadable(step, e)
        self._unreadable.append(step)
        continue
      self._check_compatible(step, meta, expected, compat_keys)
      self._check_shapes(step, saved_tree, storable_target)
      try:
        state = self._manager.restore(
            step,
            args=ocp.args.Composite(
                **{_STATE: ocp.args.StandardRestore(storable_target)}
            ),
        )[_STATE]
      except Exception as e:  # pylint: disable=broad-except
        self._warn_unreadable(step, e)
        self._unreadable.append(step)
        continue
      self._checked = True
      return _data_to_keys(state, target), meta, step
    # Nothing usable: saving from scratch may now replace what is there.
    self._checked = True
    return None

  def _warn_unreadable(self, step: int, error: Exception) -> None:
    logging.warning(
        "Checkpoint step %d in %s is unreadable (%s: %s); falling back to the "
        "previous step.",
        step,
        self.directory,
        type(error).__name__,
        error,
    )

  def _fix_hint(self) -> str:
    return (
        "Nothing was restored, written or deleted. Use another --workdir for "
        f"this configuration, or delete {self.directory} to start over."
    )

  def _check_shapes(self, step: int, saved: PyTree, target: PyTree) -> None:
    saved_shapes, wanted_shapes = _leaf_shapes(saved), _leaf_shapes(target)
    if saved_shapes != wanted_shapes:
      only_saved = sorted((saved_shapes - wanted_shapes).elements())
      only_wanted = sorted((wanted_shapes - saved_shapes).elements())
      raise IncompatibleCheckpointError(
          f"Checkpoint directory {self.directory} (step {step}) holds a state "
          "whose array shapes differ from the requested state: saved-only "
          f"shapes {only_saved[:5]}, requested-only shapes {only_wanted[:5]} "
          "(at most 5 of each shown). Add the config keys that set these "
          f"shapes to compat_keys. {self._fix_hint()}"
      )

  def _check_compatible(
      self,
      step: int,
      saved: Mapping[str, Any],
      expected: Mapping[str, Any],
      compat_keys: Sequence[str],
  ) -> None:
    # A key the saved meta lacks was added to the model definition after that checkpoint was
    # written; new keys default to the old behaviour, so only keys present on both sides count.
    diffs = [
        (k, _lookup(saved, k), _lookup(expected, k))
        for k in compat_keys
        if _lookup(saved, k) is not _MISSING
        and _lookup(saved, k) != _lookup(expected, k)
    ]
    if diffs:
      lines = "\n".join(
          f"  {k}: saved {s!r} vs requested {r!r}" for k, s, r in diffs
      )
      raise IncompatibleCheckpointError(
          f"Checkpoint directory {self.directory} (step {step}) was written "
          f"by a different model:\n{lines}\n{self._fix_hint()}"
      )
