"""Tests for pareto_vae_jax.checkpoint (CPU, small, tmp_path only)."""

import hashlib
import json
import os
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from absl import logging as absl_logging

from pareto_vae_jax import checkpoint
from pareto_vae_jax.checkpoint import (Checkpointer, IncompatibleCheckpointError,
                                       UnreadableCheckpointError)

MODEL_KEYS = ("config.latent", "config.latent_dim", "config.model")


def _meta(latent="pareto", latent_dim=8, epoch=0, index=0):
  return {
      "config": {"latent": latent, "latent_dim": latent_dim, "model": "conv",
                 "lr": 1e-3},
      "seed": 42,
      "epoch": epoch,
      "index": index,
  }


def _state(scale=1.0, latent_dim=8):
  params = {
      "enc": {"kernel": scale * jnp.ones((3, latent_dim)),
              "bias": jnp.zeros((latent_dim,))},
      "dec": {"kernel": scale * jnp.ones((latent_dim, 3), jnp.bfloat16)},
  }
  opt_state = optax.adam(1e-3).init(params)
  return {"params": params, "opt_state": opt_state, "step": int(scale),
          "rng": jax.random.key(int(scale))}


def _open(root, latent_dim=8, max_to_keep=3, **meta):
  """A Checkpointer for the run `_state(latent_dim=...)`, `_meta(**meta)`."""
  return Checkpointer(root, _state(latent_dim=latent_dim),
                      _meta(latent_dim=latent_dim, **meta),
                      model_keys=MODEL_KEYS, max_to_keep=max_to_keep)


def _steps_on_disk(root):
  """The step directories under `root`, read from the file system."""
  return sorted(int(p.name) for p in pathlib.Path(root).iterdir()
                if p.name.isdigit())


def _snapshot(root):
  """Relative path -> file bytes (None for directories), for the whole tree."""
  snap = {}
  for dirpath, dirnames, filenames in os.walk(root):
    for d in dirnames:
      snap[os.path.relpath(os.path.join(dirpath, d), root)] = None
    for f in filenames:
      p = os.path.join(dirpath, f)
      snap[os.path.relpath(p, root)] = pathlib.Path(p).read_bytes()
  return snap


def _assert_same_tree(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert type(x) is type(y)
    if isinstance(y, jax.Array) and jax.dtypes.issubdtype(
        y.dtype, jax.dtypes.prng_key):
      assert jax.random.key_impl(x) == jax.random.key_impl(y)
      x, y = jax.random.key_data(x), jax.random.key_data(y)
    assert np.asarray(x).dtype == np.asarray(y).dtype
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_incompatibilities_names_each_differing_key_with_both_values():
  saved = _meta(latent="pareto", latent_dim=8)
  current = _meta(latent="lognormal", latent_dim=16, epoch=5)
  assert checkpoint.incompatibilities(saved, current, MODEL_KEYS) == [
      "config.latent: saved 'pareto' vs requested 'lognormal'",
      "config.latent_dim: saved 8 vs requested 16",
  ]
  # Keys outside `keys` (epoch) never count; equal metas are compatible.
  assert checkpoint.incompatibilities(saved, saved, MODEL_KEYS) == []


def test_incompatibilities_compares_as_json_and_skips_keys_the_saved_meta_lacks():
  # A tuple in the current meta equals the list JSON gave back for it.
  assert checkpoint.incompatibilities(
      {"hidden": [64, 32]}, {"hidden": (64, 32)}, ["hidden"]) == []
  # A key added to the model definition after the checkpoint was written.
  assert checkpoint.incompatibilities(
      {"config": {}}, {"config": {"flow_layers": 2}}, ["config.flow_layers"]
  ) == []
  # A key the current meta lacks is a difference.
  assert checkpoint.incompatibilities(
      {"config": {"prior": "fixed"}}, {"config": {}}, ["config.prior"]
  ) == ["config.prior: saved 'fixed' vs requested '<missing>'"]


def test_round_trip_with_optax_state_int_step_and_typed_key(tmp_path):
  state = _state(scale=5.0)
  # Advance Adam once so mu/nu/count are non-trivial.
  tx = optax.adam(1e-3)
  grads = jax.tree.map(jnp.ones_like, state["params"])
  _, state["opt_state"] = tx.update(grads, state["opt_state"], state["params"])
  meta = _meta(epoch=3, index=1280)

  with _open(tmp_path / "ckpt") as ckpt:
    assert ckpt.restored is None
    ckpt.save(5, state, meta)
  assert _steps_on_disk(tmp_path / "ckpt") == [5]

  # A fresh Checkpointer, as after a process restart.
  with _open(tmp_path / "ckpt") as ckpt:
    restored = ckpt.restored
  assert restored is not None
  got, got_meta, step = restored
  assert step == 5
  assert got_meta == meta
  _assert_same_tree(got, state)
  assert isinstance(got["opt_state"][0], optax.ScaleByAdamState)
  # The restored key must work as a key, and continue the same stream.
  np.testing.assert_array_equal(
      jax.random.key_data(jax.random.split(got["rng"])),
      jax.random.key_data(jax.random.split(state["rng"])),
  )
  # The read-only function gives the same, and writes nothing.
  before = _snapshot(tmp_path)
  got, _, step = checkpoint.restore_latest(tmp_path / "ckpt", _state())
  assert step == 5
  _assert_same_tree(got, state)
  assert checkpoint.latest_meta(tmp_path / "ckpt") == (5, meta)
  assert checkpoint.all_steps(tmp_path / "ckpt") == [5]
  assert _snapshot(tmp_path) == before


def test_read_only_functions_on_a_missing_directory_create_nothing(tmp_path):
  missing = tmp_path / "absent"
  assert checkpoint.all_steps(missing) == []
  assert checkpoint.latest_meta(missing) is None
  assert checkpoint.restore_latest(missing, _state()) is None
  assert not missing.exists()


def test_keeps_only_last_k(tmp_path):
  with _open(tmp_path, max_to_keep=2) as ckpt:
    for step in (1, 2, 3, 4):
      ckpt.save(step, _state(scale=step), _meta(index=step))
  assert _steps_on_disk(tmp_path) == [3, 4]
  got, meta, step = checkpoint.restore_latest(tmp_path, _state())
  assert step == 4 and meta["index"] == 4
  _assert_same_tree(got, _state(scale=4))


def test_save_refuses_a_step_not_after_the_saved_ones(tmp_path):
  with _open(tmp_path) as ckpt:
    ckpt.save(2, _state(), _meta())
    for step in (1, 2):
      with pytest.raises(ValueError, match=f"step {step}.*holds step 2"):
        ckpt.save(step, _state(), _meta())
    with pytest.raises(TypeError):
      ckpt.save(3, _state(), {"not json": object()})
  assert _steps_on_disk(tmp_path) == [2]


def _delete_meta(step_dir):
  os.remove(step_dir / "meta" / "metadata")


def _truncate_state_metadata(step_dir):
  p = step_dir / "state" / "_METADATA"
  p.write_bytes(p.read_bytes()[:20])


def _truncate_state_data(step_dir):
  # The OCDBT manifest indexes the array data; a torn write leaves it short.
  for p in (step_dir / "state").rglob("manifest.ocdbt"):
    p.write_bytes(p.read_bytes()[:8])


def _delete_state_metadata(step_dir):
  os.remove(step_dir / "state" / "_METADATA")


def _delete_state_data(step_dir):
  for p in (step_dir / "state").rglob("*"):
    if p.is_file() and p.parent.name == "d":
      os.remove(p)


def _without_file_digests(step_dir):
  """A step as a kill before its digest list, or an older version, leaves it."""
  os.remove(step_dir / "files.sha256")


# Without a digest list, a failed Orbax read can leave a callback for an already
# closed asyncio loop; that is Orbax-internal noise, not a failure of the fallback.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("digests", [True, False], ids=["digests", "no_digests"])
@pytest.mark.parametrize(
    "damage", [_delete_meta, _truncate_state_metadata, _truncate_state_data,
               _delete_state_metadata, _delete_state_data])
def test_damaged_latest_falls_back_to_previous(tmp_path, damage, digests, monkeypatch):
  with _open(tmp_path) as ckpt:
    ckpt.save(1, _state(scale=1), _meta(index=1))
    ckpt.save(2, _state(scale=2), _meta(index=2))
  if not digests:
    _without_file_digests(tmp_path / "2")
  damage(tmp_path / "2")

  warnings = []
  monkeypatch.setattr(absl_logging, "warning",
                      lambda msg, *args: warnings.append(msg % args))
  with _open(tmp_path) as ckpt:
    got, meta, step = ckpt.restored
    assert step == 1 and meta["index"] == 1
    _assert_same_tree(got, _state(scale=1))
    ours = [w for w in warnings if "falling back" in w]
    assert len(ours) == 1 and "step 2" in ours[0], warnings
    # One line, without the TensorStore spec some read errors carry.
    assert "\n" not in ours[0] and "tensorstore" not in ours[0].lower(), ours[0]
    if digests:  # named from the digest list, before Orbax read anything
      assert "damaged: file" in ours[0], ours[0]
    assert _steps_on_disk(tmp_path) == [1, 2]  # opening moves nothing
    damaged = _snapshot(tmp_path / "2")
    # Training resumes from step 1 and reaches step 2 again: the damaged
    # step 2 must not block that save, nor be deleted by it.
    ckpt.save(2, _state(scale=3), _meta(index=3))
  assert _steps_on_disk(tmp_path) == [1, 2]
  assert _snapshot(tmp_path / "2.unreadable-0") == damaged
  with _open(tmp_path) as ckpt:
    got, meta, step = ckpt.restored
  assert step == 2 and meta["index"] == 3
  _assert_same_tree(got, _state(scale=3))


def test_all_damaged_refuses_to_open_rather_than_start_over(tmp_path):
  with _open(tmp_path) as ckpt:
    ckpt.save(1, _state(), _meta())
  _delete_meta(tmp_path / "1")
  before = _snapshot(tmp_path)
  assert checkpoint.latest_meta(tmp_path) is None
  for open_it in (_open, lambda root: checkpoint.restore_latest(root, _state())):
    with pytest.raises(UnreadableCheckpointError, match=str(tmp_path)):
      open_it(tmp_path)
  assert _snapshot(tmp_path) == before


def _flip_middle_of_largest_data_file(step_dir):
  """64 flipped bytes, size unchanged: what bit rot or a bad disk does."""
  data = [p for p in (step_dir / "state").rglob("*")
          if p.is_file() and p.parent.name == "d"]
  p = max(data, key=lambda p: p.stat().st_size)
  b = bytearray(p.read_bytes())
  middle = len(b) // 2
  b[middle:middle + 64] = bytes(x ^ 0xFF for x in b[middle:middle + 64])
  p.write_bytes(bytes(b))


def _large_state(seed):
  # Large enough that OCDBT stores the array in a data file of its own
  # (small values are kept inline in its checksummed index).
  rng = np.random.default_rng(seed)
  return {"w": jnp.asarray(rng.normal(size=(256, 256)), jnp.float32)}


def _warnings_into(monkeypatch):
  warnings = []
  monkeypatch.setattr(absl_logging, "warning",
                      lambda msg, *args: warnings.append(msg % args))
  return warnings


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("digests", [True, False], ids=["digests", "no_digests"])
def test_flipped_bytes_in_the_state_fail_its_checksum_and_fall_back(
    tmp_path, monkeypatch, digests):
  with Checkpointer(tmp_path, _large_state(0), {}, model_keys=()) as ckpt:
    ckpt.save(1, _large_state(1), {})
    ckpt.save(2, _large_state(2), {})
  if not digests:  # then the checksum of the state read back catches it
    _without_file_digests(tmp_path / "2")
  _flip_middle_of_largest_data_file(tmp_path / "2")
  warnings = _warnings_into(monkeypatch)
  got, meta, step = checkpoint.restore_latest(tmp_path, _large_state(0))
  assert step == 1 and meta == {}
  _assert_same_tree(got, _large_state(1))
  expected = "changed since it was saved" if digests else "state read back differs"
  assert any("step 2" in w and "sha256" in w and expected in w for w in warnings), warnings


def test_each_step_lists_its_files_with_sha256_digests(tmp_path):
  with _open(tmp_path) as ckpt:
    ckpt.save(1, _state(scale=1), _meta())
    ckpt.save(2, _state(scale=2), _meta())
  for step in (1, 2):
    step_dir = tmp_path / str(step)
    listed = {}
    for line in (step_dir / "files.sha256").read_text().splitlines():
      digest, rel = line.split("  ", 1)  # `sha256sum -c` format
      listed[rel] = digest
    on_disk = {str(p.relative_to(step_dir)) for p in step_dir.rglob("*")
               if p.is_file() and p.name != "files.sha256"}
    assert set(listed) == on_disk and any(r.startswith("state/") for r in on_disk)
    for rel, digest in listed.items():
      assert hashlib.sha256((step_dir / rel).read_bytes()).hexdigest() == digest, rel


def test_a_read_error_is_reported_in_one_line_without_the_tensorstore_spec():
  spec = "{\n  'driver': 'zarr',\n  'kvstore': {'path': '/ckpt/2/state/'}\n}"
  error = ValueError("DATA_LOSS: Error reading manifest: too short [tensorstore_spec='"
                     + spec + "']")
  assert checkpoint._short_reason(error) == (
      "ValueError: DATA_LOSS: Error reading manifest: too short")
  error = Exception("Encountered error while reading array index: (slice(0, 512, 1),). "
                    "See full TensorStore details: <bound method ...\n" + spec)
  assert checkpoint._short_reason(error) == (
      "Exception: Encountered error while reading array index: (slice(0, 512, 1),)")
  assert checkpoint._short_reason(OSError("x" * 1000)).endswith("...")


def test_non_finite_floats_read_back_are_damage(tmp_path, monkeypatch):
  nan_state = _state(scale=2)
  nan_state["params"]["enc"]["bias"] = nan_state["params"]["enc"]["bias"].at[
      0].set(jnp.nan)
  with _open(tmp_path) as ckpt:
    ckpt.save(1, _state(scale=1), _meta())
    ckpt.save(2, nan_state, _meta())
  warnings = _warnings_into(monkeypatch)
  with _open(tmp_path) as ckpt:
    assert ckpt.restored.step == 1
  assert any("step 2" in w and "non-finite" in w for w in warnings), warnings


def test_checkpoint_saved_without_a_checksum_is_restored_unchecked(tmp_path):
  with _open(tmp_path) as ckpt:
    ckpt.save(1, _state(scale=1), _meta())
  meta_file = tmp_path / "1" / "meta" / "metadata"
  saved = json.loads(meta_file.read_text())
  del saved["state_sha256"]  # as written before checksums were stored
  meta_file.write_text(json.dumps(saved))
  _without_file_digests(tmp_path / "1")
  with _open(tmp_path) as ckpt:
    got, meta, step = ckpt.restored
  assert step == 1 and meta == _meta()
  _assert_same_tree(got, _state(scale=1))


def test_incompatible_meta_refuses_to_open_and_touches_nothing(tmp_path):
  root = tmp_path / "workdir"
  with _open(root, max_to_keep=2) as ckpt:
    ckpt.save(1, _state(), _meta())
    ckpt.save(2, _state(), _meta())
  before = _snapshot(root)

  with pytest.raises(IncompatibleCheckpointError) as err:
    _open(root, max_to_keep=2, latent="lognormal")
  msg = str(err.value)
  assert isinstance(err.value, ValueError)
  assert str(root) in msg
  assert "config.latent: saved 'pareto' vs requested 'lognormal'" in msg
  assert "latent_dim" not in msg  # Equal keys are not reported.
  assert "--workdir" in msg and "delete" in msg
  assert _snapshot(root) == before


def test_shape_mismatch_is_incompatible_not_damage(tmp_path):
  # latent_dim changed but the caller forgot to list it in model_keys: the
  # arrays no longer fit, which must not be mistaken for a damaged step.
  with _open(tmp_path) as ckpt:
    ckpt.save(1, _state(), _meta())
  before = _snapshot(tmp_path)
  with pytest.raises(IncompatibleCheckpointError) as err:
    Checkpointer(tmp_path, _state(latent_dim=16), _meta(latent_dim=16),
                 model_keys=("config.latent",))
  assert str(tmp_path) in str(err.value)
  assert "(3, 8)" in str(err.value) and "(3, 16)" in str(err.value)
  assert _snapshot(tmp_path) == before


class _FailingWrite:
  """A background write that fails, as on a full disk."""

  def result(self, timeout=None):
    raise OSError(28, "No space left on device")


def test_failed_background_write_raises_in_the_caller_once(tmp_path,
                                                          monkeypatch):
  original = ocp.StandardCheckpointHandler.async_save

  async def failing_save(self, *args, **kwargs):
    return list(await original(self, *args, **kwargs) or []) + [
        _FailingWrite()]

  monkeypatch.setattr(ocp.StandardCheckpointHandler, "async_save",
                      failing_save)
  ckpt = _open(tmp_path)
  ckpt.save(1, _state(), _meta())
  with pytest.raises((OSError, checkpoint.CheckpointSaveError)):
    ckpt.wait_until_finished()
  ckpt.close()  # reported once, not again on closing
  assert _steps_on_disk(tmp_path) == []
