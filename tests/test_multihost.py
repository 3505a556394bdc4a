"""Multi-host training on CPU: two local processes joined by ``jax.distributed`` (gloo).

The two processes (tests/multihost_worker.py) each hold 2 CPU devices, so the mesh spans 4
devices in 2 processes. They train a tiny config with a simulated pre-emption and a resume from
the checkpoint they wrote together, and must end with identical parameters, equal (up to the
order of floating-point reductions) to one process that trains the same global batches on a
4-device mesh without interruption.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import tiny
from pareto_vae_jax import multihost, train

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multihost_worker.py")
OVERRIDES = {"num_epochs": 1, "batch_size": 64, "hidden": [32], "halt_after_steps": 60,
             "iwae_samples": 4}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run_two_processes(workdir, out_dir) -> list[subprocess.CompletedProcess]:
  port = _free_port()
  procs = []
  for pid in range(2):
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
               JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(pid),
               XLA_FLAGS="--xla_force_host_platform_device_count=2")
    procs.append(subprocess.Popen(
        [sys.executable, WORKER, str(workdir), str(out_dir), json.dumps(OVERRIDES)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
  outputs = []
  for p in procs:
    try:
      out, _ = p.communicate(timeout=420)
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
    outputs.append((p.returncode, out))
  for pid, (rc, out) in enumerate(outputs):
    assert rc == 0, f"process {pid} failed:\n{out[-4000:]}"
  return outputs


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
  root = tmp_path_factory.mktemp("multihost")
  outputs = _run_two_processes(root / "run", root)
  return root, outputs


def _load(path) -> dict[str, np.ndarray]:
  with np.load(path) as f:
    return {k: f[k] for k in f.files}


def test_two_processes_end_with_identical_parameters(two_process_run):
  root, _ = two_process_run
  results = [json.loads((root / f"result_{i}.json").read_text()) for i in range(2)]
  steps_per_epoch = 10000 // OVERRIDES["batch_size"]
  for r in results:
    assert r["process_count"] == 2 and r["device_count"] == 4 and r["local_devices"] == 2
    assert r["step"] == steps_per_epoch
  a, b = _load(root / "params_0.npz"), _load(root / "params_1.npz")
  assert a.keys() == b.keys() and len(a) > 0
  for k in a:
    np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_two_processes_match_one_process(two_process_run, tmp_path):
  root, _ = two_process_run
  assert jax.device_count() == 4  # conftest: this process has a 4-device mesh too
  overrides = dict(OVERRIDES, hidden=tuple(OVERRIDES["hidden"]))
  overrides.pop("halt_after_steps")
  state, _, _ = train.fit(tiny.config(**overrides), str(tmp_path / "single"))
  single = jax.device_get(state.params)
  multi = _load(root / "params_0.npz")
  leaves = jax.tree_util.tree_leaves_with_path(single)
  assert len(leaves) == len(multi)
  for path, leaf in leaves:
    np.testing.assert_allclose(multi[jax.tree_util.keystr(path)], leaf, rtol=2e-4, atol=2e-5,
                               err_msg=jax.tree_util.keystr(path))


def test_only_process_zero_writes_outputs(two_process_run):
  root, outputs = two_process_run
  run = root / "run"
  assert (run / "test_metrics.json").exists()
  lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
  # One epoch: one train line (written once, by process 0), one test line per evaluation.
  assert sum(line["split"] == "train" for line in lines) == 1
  steps = sorted(int(d) for d in os.listdir(run / "checkpoints") if d.isdigit())
  assert steps[-1] == 10000 // OVERRIDES["batch_size"] and OVERRIDES["halt_after_steps"] in steps
  assert "epoch 1/1" in outputs[0][1] and "epoch 1/1" not in outputs[1][1]


def test_env_settings():
  env = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4",
         "JAX_PROCESS_ID": "3"}
  assert multihost.env_settings(env) == {"coordinator_address": "10.0.0.1:1234",
                                         "num_processes": 4, "process_id": 3}
  assert multihost.env_settings({}) is None
  assert multihost.env_settings(dict(env, JAX_NUM_PROCESSES="1")) is None
  with pytest.raises(ValueError, match="JAX_PROCESS_ID"):
    multihost.env_settings(dict(env, JAX_PROCESS_ID="4"))
  with pytest.raises(ValueError, match="not an integer"):
    multihost.env_settings(dict(env, JAX_NUM_PROCESSES="two"))


def test_global_batch_single_process_equals_gather():
  mesh = multihost.global_mesh()
  x = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
  idx = np.random.default_rng(0).permutation(40)[:32].reshape(2, 16)
  batch = multihost.global_batch(idx, {"x": x}, mesh)
  np.testing.assert_array_equal(np.asarray(batch["x"]), x[idx])
  np.testing.assert_array_equal(np.asarray(batch["index"]), idx)
  assert batch["x"].sharding.spec == jax.sharding.PartitionSpec(None, "data")
