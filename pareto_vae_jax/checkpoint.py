"""Checkpointing of training state with Orbax.

A thin layer over ``orbax.checkpoint.CheckpointManager`` that adds the three
things a resumable training run needs and Orbax does not give directly:

* fallback: if the newest step cannot be read (a crash mid-write, a truncated
  or missing file), or reads back other bytes than were saved (a checksum of
  the state is stored in its meta) or non-finite floats, the previous step is
  tried, and so on. Such a step is never deleted: the next save moves it aside
  (``<step>.unreadable-<n>``). If steps exist but none is usable, opening
  raises :class:`UnreadableCheckpointError` rather than start over;
* a compatibility check: a directory that holds checkpoints of a *different*
  model (other latent family, latent size, architecture, ...) is refused with
  :class:`IncompatibleCheckpointError` before anything is written or deleted,
  instead of being silently restarted and garbage collected. The meta half of
  the check is the pure function :func:`incompatibilities`;
* typed PRNG keys (``jax.random.key``) in the state, stored as their raw key
  data so the on-disk format does not depend on Orbax's key support;
* a digest of every file of a step (``files.sha256``, written once the step's
  save has finished, in ``sha256sum`` format), checked before Orbax opens the
  step: a truncated, flipped or garbage file is named and skipped without
  TensorStore ever reading it;
* save errors raise in the caller's thread: at :meth:`Checkpointer.save` when
  the step's directory cannot be created, else at the next ``save``,
  ``wait_until_finished`` or ``close`` (Orbax only logs errors of its
  background writes).

Each step directory holds two items: ``state`` (any pytree of arrays and
scalars, via ``StandardSave``) and ``meta`` (a JSON dict, e.g. the config, the
RNG seed and the data-order position).

Reading is done by functions (:func:`all_steps`, :func:`latest_meta`,
:func:`restore_latest`), which never write. Writing is done by a
:class:`Checkpointer`, which checks and restores the directory when it is
opened, so that every instance may save::

  keys = ("config.latent",)
  with Checkpointer(workdir, state, meta, model_keys=keys) as ckpt:
    if ckpt.restored is not None:
      state, _, step = ckpt.restored
    ...
    ckpt.save(step, state, meta)
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

PyTree = Any

_STATE = "state"
_META = "meta"
_MISSING = "<missing>"
# The meta key of the state's checksum (:func:`_checksum`); checkpoints written before it
# existed lack it and are restored unchecked.
_CHECKSUM = "state_sha256"
# Each committed step's file list with sha256 digests (``sha256sum -c`` reads it), written
# once its save has finished: every file is checked before Orbax reads any (see
# :func:`_check_files`). A step killed before it has none and is read unchecked.
_FILE_DIGESTS = "files.sha256"
# Where a TensorStore error message stops being about the error (its spec follows).
_ERROR_NOISE = ("See full TensorStore details", " [tensorstore_spec=")


class IncompatibleCheckpointError(ValueError):
  """The checkpoint directory holds checkpoints of a different model."""


class UnreadableCheckpointError(RuntimeError):
  """The checkpoint directory holds steps, none of which is usable."""


class CheckpointSaveError(RuntimeError):
  """A checkpoint step could not be written whole."""


class _Damaged(Exception):
  """A step read back without error but not as it was saved."""


class Restored(NamedTuple):
  """A checkpoint read back: the state, the meta saved with it, and its step."""

  state: PyTree
  meta: dict[str, Any]
  step: int


def incompatibilities(
    saved_meta: Mapping[str, Any],
    current_meta: Mapping[str, Any],
    keys: Sequence[str],
) -> list[str]:
  """The model-defining fields on which a saved meta and the current one differ.

  Both metas are compared as JSON stores them, so a tuple equals the list a
  saved meta gives back. A key missing from `saved_meta` is skipped: it was
  added to the model definition after that checkpoint was written, and a new
  key defaults to the old behaviour.

  Args:
    saved_meta: The meta stored with a checkpoint.
    current_meta: The meta of the current run.
    keys: Model-defining keys; a dotted key addresses nested dicts
      ("config.latent" is ``meta["config"]["latent"]``).

  Returns:
    One line per differing key, in the order of `keys`, naming the key and
    both values; empty when the metas are compatible.

  Example:
    >>> incompatibilities({"latent": "pareto"}, {"latent": "gaussian"},
    ...                   ["latent"])
    ["latent: saved 'pareto' vs requested 'gaussian'"]
  """
  saved, current = _json_copy(saved_meta), _json_copy(current_meta)
  lines = []
  for key in keys:
    was, now = _lookup(saved, key), _lookup(current, key)
    if was is not _MISSING and was != now:
      lines.append(f"{key}: saved {was!r} vs requested {now!r}")
  return lines


def all_steps(directory: str | os.PathLike[str]) -> list[int]:
  """Steps saved in `directory` (readable or not), ascending; [] if absent."""
  manager = _reader(directory)
  try:
    return sorted(manager.all_steps())
  finally:
    manager.close()


def latest_meta(directory: str | os.PathLike[str],) -> tuple[int, dict[str, Any]] | None:
  """``(step, meta)`` of the newest step whose meta reads, or None.

  For tools that must rebuild the model (from ``meta["config"]``) before they
  can give :func:`restore_latest` a target; reads no arrays. Unreadable steps
  are skipped with a warning.
  """
  manager = _reader(directory)
  try:
    for step in sorted(manager.all_steps(), reverse=True):
      try:
        meta = _read_meta(manager, step)
        meta.pop(_CHECKSUM, None)
        return step, meta
      except Exception as e:  # pylint: disable=broad-except
        _warn_unreadable(directory, step, e)
    return None
  finally:
    manager.close()


def restore_latest(directory: str | os.PathLike[str], target: PyTree) -> Restored | None:
  """Reads the newest readable checkpoint into the structure of `target`.

  Steps are tried newest first; a damaged one (one that raises while being
  read, or fails its checksum or holds non-finite floats) is logged as a
  warning and skipped. Nothing is written or deleted.

  Args:
    directory: The checkpoint directory.
    target: Pytree with the structure, shapes and dtypes to restore into
      (e.g. a freshly initialised train state). Typed PRNG keys in it are
      restored as typed keys of the same implementation.

  Returns:
    The newest usable step, or None if the directory holds none.

  Raises:
    IncompatibleCheckpointError: the newest readable checkpoint holds arrays
      of other shapes than `target`.
    UnreadableCheckpointError: the directory holds steps, none usable.
  """
  manager = _reader(directory)
  try:
    restored, _ = _restore_newest(manager, target, {}, ())
    return restored
  finally:
    manager.close()


class Checkpointer:
  """A run's checkpoint directory, checked and restored when opened.

  Opening one reads the directory before anything can be written. The newest
  readable step is compared with the current run: its meta with `meta` on
  `model_keys` (:func:`incompatibilities`), its array shapes with `target`'s.
  If it belongs to another model the constructor raises
  :class:`IncompatibleCheckpointError`, having written and deleted nothing;
  otherwise that step is restored into `restored`. A damaged step is skipped
  (with a warning) in favour of the one before it, and moved aside (renamed
  ``<step>.unreadable-<n>``, never deleted) by the first :meth:`save`, which
  may then write its step number again.

  Every instance has therefore passed the check, and :meth:`save` may be
  called at any time. Saves are asynchronous; :meth:`wait_until_finished`,
  :meth:`close` and leaving a ``with`` block wait for them. In a
  multi-process run every process opens the same directory and saves the
  same steps; Orbax coordinates the writes.

  Attributes:
    directory: Absolute path of the checkpoint directory.
    restored: The newest usable step found when opening, or None if the
      directory held none (the run starts from `target`).
  """

  def __init__(
      self,
      directory: str | os.PathLike[str],
      target: PyTree,
      meta: Mapping[str, Any],
      *,
      model_keys: Sequence[str],
      max_to_keep: int | None = 3,
  ) -> None:
    """Opens (and creates if absent) a checkpoint directory for a run.

    Args:
      directory: Root directory; each step is a subdirectory named by step.
      target: The run's initial state: the structure, shapes and dtypes to
        restore into. Typed PRNG keys in it are restored as typed keys of the
        same implementation.
      meta: The meta of the current run.
      model_keys: Model-defining keys of `meta`, see
        :func:`incompatibilities`.
      max_to_keep: Number of most recent steps kept; None keeps all.

    Raises:
      IncompatibleCheckpointError: the newest readable checkpoint was saved
        by a different model. Nothing is written or deleted.
      UnreadableCheckpointError: the directory holds steps, none usable.
        Nothing is written or deleted.
    """
    self.directory = os.path.abspath(os.fspath(directory))
    # Opening the manager only lists steps; with no root `metadata` given and
    # cleanup_tmp_directories off it writes or deletes nothing in an existing
    # directory, which the compatibility guarantee relies on. Directories are
    # created in the caller's thread, so that failing to create one (a
    # read-only or full disk) raises there: Orbax only logs errors of its
    # background threads, and its other threads then wait for the directory.
    self._manager = ocp.CheckpointManager(
        self.directory,
        item_handlers=_item_handlers(),
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            create=True,
            async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
        ),
    )
    self._pending: int | None = None  # the step being saved in the background
    try:
      self.restored, self._unreadable = _restore_newest(self._manager, target, meta, model_keys)
    except BaseException:
      self._manager.close()
      raise

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc_info: Any) -> None:
    self.close()

  def close(self) -> None:
    """Waits for pending asynchronous saves and releases resources.

    Raises:
      CheckpointSaveError: the last save was not written whole.
    """
    try:
      self.wait_until_finished()
    finally:
      self._manager.close()

  def wait_until_finished(self) -> None:
    """Blocks until an asynchronous save has been written whole.

    Raises:
      OSError, CheckpointSaveError: it was not (the latter when Orbax only
        logged why).
    """
    step, self._pending = self._pending, None  # a failure is reported once
    self._manager.wait_until_finished()
    # Orbax renames a step's temporary directory to the step's number once
    # every item is written; a failed background write leaves no such
    # directory, only an error in Orbax's log.
    if step is not None and not os.path.isdir(os.path.join(self.directory, str(step))):
      raise CheckpointSaveError(f"Saving checkpoint step {step} in {self.directory} failed (Orbax "
                                "logged the error above). Check that the directory is writable and "
                                "the disk has room, then run again to resume from the last step "
                                "saved.")
    if step is not None and jax.process_index() == 0:
      _write_file_digests(os.path.join(self.directory, str(step)))

  def reached_preemption(self, step: int) -> bool:
    """Whether all processes have reached the pre-emption sync point at `step`.

    Orbax's ``reached_preemption``: JAX's distributed service hears the
    scheduler's notice (SIGTERM, or a TPU VM's maintenance event) and has all
    processes agree on one step; False in a single process, where
    ``interrupts.PreemptionWatch`` catches SIGTERM itself.
    """
    return self._manager.reached_preemption(step)

  def save(self, step: int, state: PyTree, meta: Mapping[str, Any]) -> None:
    """Starts saving `state` and `meta` as `step`; drops steps past max_to_keep.

    Damaged steps skipped when opening are moved aside first (renamed
    ``<step>.unreadable-<n>``; never deleted).

    Args:
      step: Training step; must be larger than every readable saved step.
      state: Pytree of arrays / scalars; may contain typed PRNG keys.
      meta: JSON-serialisable dict (config, seed, epoch, index, ...).

    Raises:
      ValueError: `step` is not larger than every readable saved step.
      TypeError: `meta` is not JSON-serialisable.
      OSError: the step's directory could not be created.
      CheckpointSaveError: the previous save was not written whole.
    """
    meta = _json_copy(meta)  # also detaches it from the caller's later edits
    self.wait_until_finished()  # surfaces the previous save's failure here
    readable = set(self._manager.all_steps()) - set(self._unreadable)
    if readable and step <= max(readable):
      raise ValueError(f"Cannot save step {step} in {self.directory}: it already holds "
                       f"step {max(readable)}, and steps must increase.")
    if self._unreadable:
      self._move_aside(self._unreadable)
      self._unreadable = []
    storable = _keys_to_data(state)
    meta[_CHECKSUM] = _checksum(storable)
    # force: when to save is the caller's decision, not an Orbax save policy.
    self._manager.save(
        step,
        args=ocp.args.Composite(**{
            _STATE: ocp.args.StandardSave(storable),
            _META: ocp.args.JsonSave(meta),
        }),
        force=True,
    )
    self._pending = step

  def _move_aside(self, steps: Sequence[int]) -> None:
    """Renames damaged steps out of Orbax's step naming, keeping their bytes:
    a read error may be passing (a flaky mount), and the data someone's."""
    if jax.process_index() == 0:
      for step in steps:
        path = os.path.join(self.directory, str(step))
        n = 0
        while os.path.exists(f"{path}.unreadable-{n}"):
          n += 1
        logging.warning(
            "Moving unreadable checkpoint step %d in %s aside to %s.",
            step,
            self.directory,
            f"{path}.unreadable-{n}",
        )
        os.rename(path, f"{path}.unreadable-{n}")
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices("checkpoint: damaged steps moved")
    self._manager.reload()


def _item_handlers() -> dict[str, ocp.CheckpointHandler]:
  return {
      _STATE: ocp.StandardCheckpointHandler(),
      _META: ocp.JsonCheckpointHandler(),
  }


def _reader(directory: str | os.PathLike[str]) -> ocp.CheckpointManager:
  """A manager that only reads: creates no directory, keeps every step.

  Not Orbax's `read_only` option, which logs a warning on every opening.
  """
  return ocp.CheckpointManager(
      os.path.abspath(os.fspath(directory)),
      item_handlers=_item_handlers(),
      options=ocp.CheckpointManagerOptions(max_to_keep=None, create=False),
  )


def _read_meta(manager: ocp.CheckpointManager, step: int) -> dict[str, Any]:
  return dict(
      manager.restore(step, args=ocp.args.Composite(**{_META: ocp.args.JsonRestore()}))[_META])


def _restore_newest(
    manager: ocp.CheckpointManager,
    target: PyTree,
    meta: Mapping[str, Any],
    model_keys: Sequence[str],
) -> tuple[Restored | None, list[int]]:
  """The newest usable step, and the newer steps skipped as unreadable.

  Raises:
    IncompatibleCheckpointError: the newest readable step was saved by a
      different model than `meta` and `target` describe.
  """
  directory = str(manager.directory)
  storable_target = _keys_to_data(target)
  unreadable = []
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      _check_files(os.path.join(directory, str(step)))
      saved_meta = _read_meta(manager, step)
      checksum = saved_meta.pop(_CHECKSUM, None)
      # Metadata first: a shape mismatch must be reported as incompatible,
      # not mistaken for damage (which would skip to older steps).
      saved_tree = manager.item_metadata(step)[_STATE]
      saved_tree = getattr(saved_tree, "tree", saved_tree)  # Orbax >= 0.11.
      if not jax.tree.leaves(saved_tree) and jax.tree.leaves(storable_target):
        # Orbax reads a missing state/_METADATA as an empty tree.
        raise _Damaged("the state's array metadata is missing")
    except Exception as e:  # pylint: disable=broad-except
      _warn_unreadable(directory, step, e)
      unreadable.append(step)
      continue
    differences = incompatibilities(saved_meta, meta, model_keys)
    if differences:
      lines = "\n".join(f"  {line}" for line in differences)
      raise IncompatibleCheckpointError(
          f"Checkpoint directory {directory} (step {step}) was written by a "
          f"different model:\n{lines}\n{_fix_hint(directory)}")
    _check_shapes(directory, step, saved_tree, storable_target)
    try:
      state = manager.restore(
          step,
          args=ocp.args.Composite(**{_STATE: ocp.args.StandardRestore(storable_target)}),
      )[_STATE]
      _check_restored(state, checksum)
    except Exception as e:  # pylint: disable=broad-except
      _warn_unreadable(directory, step, e)
      unreadable.append(step)
      continue
    return Restored(_data_to_keys(state, target), saved_meta, step), unreadable
  if unreadable:
    raise UnreadableCheckpointError(
        f"Checkpoint directory {directory} holds steps {sorted(unreadable)}, "
        "none of them usable (the warnings above say why). Nothing was "
        "restored, written or deleted. Move those step directories out of "
        f"{directory} to start over from step 0, or use another --workdir.")
  return None, unreadable


def _host_copy(leaf: Any) -> np.ndarray:
  """`leaf` as a numpy array. An array spanning several processes is taken to
  be replicated (the trainer's state): this process's copy."""
  if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
    leaf = leaf.addressable_data(0)
  return np.asarray(leaf)


def _checksum(tree: PyTree) -> str:
  """sha256 over every leaf's dtype, shape and bytes, in the tree's leaf order
  (the same for the state saved and the state restored into its structure)."""
  return _digest(_host_copy(leaf) for leaf in jax.tree.leaves(tree))


def _digest(arrays) -> str:
  digest = hashlib.sha256()
  for array in arrays:
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def _check_restored(state: PyTree, checksum: str | None) -> None:
  """Raises `_Damaged` if `state` is not what was saved, as far as can be seen.

  Orbax's OCDBT checksums its index but not the array chunks, so flipped
  bytes in a data file read back as other numbers; `checksum` (None for
  checkpoints written before it was stored) catches them.
  """
  leaves = [(path, _host_copy(leaf)) for path, leaf in jax.tree_util.tree_leaves_with_path(state)]
  if checksum is not None and _digest(array for _, array in leaves) != checksum:
    raise _Damaged("the state read back differs from the state saved "
                   "(sha256 mismatch)")
  for path, array in leaves:
    if jax.dtypes.issubdtype(array.dtype, np.floating) and not np.isfinite(
        array.astype(np.float64)  # also bfloat16, which numpy lacks
    ).all():
      raise _Damaged(f"non-finite values in {jax.tree_util.keystr(path)}")


def _warn_unreadable(directory: str | os.PathLike[str], step: int, error: Exception) -> None:
  logging.warning(
      "Checkpoint step %d in %s is unreadable (%s); falling back to the previous step.",
      step,
      directory,
      _short_reason(error),
  )


def _short_reason(error: Exception) -> str:
  """One line of `error`: its first, without the TensorStore spec that follows."""
  text = str(error).strip().splitlines()[0] if str(error).strip() else ""
  for marker in _ERROR_NOISE:
    text = text.split(marker)[0]
  text = text.rstrip(" .;:([")
  if len(text) > 300:
    text = text[:297] + "..."
  name = "damaged" if isinstance(error, _Damaged) else type(error).__name__
  return f"{name}: {text}" if text else name


def _file_digest(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _step_files(step_dir: str) -> list[str]:
  """Every file under a step directory but the digest list, relative, sorted."""
  files = []
  for root, _, names in os.walk(step_dir):
    for name in names:
      rel = os.path.relpath(os.path.join(root, name), step_dir)
      if rel != _FILE_DIGESTS and not name.startswith(_FILE_DIGESTS + "."):
        files.append(rel)
  return sorted(files)


def _write_file_digests(step_dir: str) -> None:
  """Writes `step_dir`/files.sha256 (atomically) for a step whose save has committed."""
  lines = "".join(
      f"{_file_digest(os.path.join(step_dir, rel))}  {rel}\n" for rel in _step_files(step_dir))
  tmp = os.path.join(step_dir, f"{_FILE_DIGESTS}.tmp")
  with open(tmp, "w", encoding="utf-8") as f:
    f.write(lines)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, os.path.join(step_dir, _FILE_DIGESTS))


def _check_files(step_dir: str) -> None:
  """Raises `_Damaged` if a file listed in the step's digests is missing or changed.

  A step without a digest list (killed before it was written, or saved by an older
  version) passes; the state's own checksum still guards it after reading.
  """
  listing = os.path.join(step_dir, _FILE_DIGESTS)
  if not os.path.exists(listing):
    return
  with open(listing, encoding="utf-8") as f:
    entries = [line.rstrip("\n").split("  ", 1) for line in f if line.strip()]
  for entry in entries:
    if len(entry) != 2:
      raise _Damaged(f"{_FILE_DIGESTS} is garbled")
    digest, rel = entry
    path = os.path.join(step_dir, rel)
    if not os.path.exists(path):
      raise _Damaged(f"file {rel} is missing")
    if _file_digest(path) != digest:
      raise _Damaged(f"file {rel} changed since it was saved (sha256 mismatch)")


def _fix_hint(directory: str) -> str:
  return ("Nothing was restored, written or deleted. Use another --workdir for "
          f"this configuration, or delete {directory} to start over.")


def _check_shapes(directory: str, step: int, saved: PyTree, target: PyTree) -> None:
  saved_shapes, wanted_shapes = _leaf_shapes(saved), _leaf_shapes(target)
  if saved_shapes != wanted_shapes:
    only_saved = sorted((saved_shapes - wanted_shapes).elements())
    only_wanted = sorted((wanted_shapes - saved_shapes).elements())
    raise IncompatibleCheckpointError(
        f"Checkpoint directory {directory} (step {step}) holds a state whose "
        "array shapes differ from the requested state: saved-only shapes "
        f"{only_saved[:5]}, requested-only shapes {only_wanted[:5]} (at most 5 "
        "of each shown). Add the config keys that set these shapes to "
        f"model_keys. {_fix_hint(directory)}")


def _is_typed_key(x: Any) -> bool:
  return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _keys_to_data(tree: PyTree) -> PyTree:
  """Replaces typed PRNG keys by their uint32 key data.

  Orbax's support for typed keys differs between versions; raw key data is a
  plain uint32 array that every version stores the same way.
  """
  return jax.tree.map(lambda x: jax.random.key_data(x) if _is_typed_key(x) else x, tree)


def _data_to_keys(restored: PyTree, target: PyTree) -> PyTree:
  """Wraps key data back into typed keys wherever `target` has a typed key."""
  return jax.tree.map(
      lambda r, t: (jax.random.wrap_key_data(r, impl=jax.random.key_impl(t))
                    if _is_typed_key(t) else r),
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
