"""Multi-host training on JAX's own runtime: ``jax.distributed``, one process per host.

Every process runs the same program (``python -m pareto_vae_jax.main --multihost ...`` on each
TPU VM worker or Slurm task). ``initialize`` joins them; after that ``jax.devices()`` lists the
devices of all processes and one ``jit`` spans them. Each process then:

* computes the same data order (it depends on the seed and epoch only) and puts on its own
  devices only its share of each global batch (``global_batch``);
* holds the replicated parameters, so every process ends with the same ones;
* calls the Orbax checkpointer collectively (Orbax coordinates the processes' writes; the work
  directory must be one path every host sees: an NFS / Filestore share or a bucket mounted
  with gcsfuse; ``gs://`` URLs are refused);
* writes logs, metrics, TensorBoard events and pictures only if it is process 0
  (``is_primary``).

When to initialize: with ``--multihost`` (``jax.distributed.initialize()`` then detects TPU pod
slices, Slurm and other supported clusters by itself), or when the environment names several
processes: ``JAX_COORDINATOR_ADDRESS`` plus ``JAX_NUM_PROCESSES`` > 1 and ``JAX_PROCESS_ID``
(the variables a hand-started group of processes sets; JAX itself reads only the first).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


def env_settings(environ: Mapping[str, str] | None = None) -> dict[str, Any] | None:
  """``initialize``'s arguments from the environment, or None if it names a single process.

  Raises:
    ValueError: the variables are set but incomplete or malformed.
  """
  environ = os.environ if environ is None else environ
  address = environ.get(ENV_COORDINATOR)
  num = environ.get(ENV_NUM_PROCESSES)
  if num is None or address is None:
    return None
  try:
    num_processes = int(num)
  except ValueError:
    raise ValueError(f"{ENV_NUM_PROCESSES}={num!r} is not an integer; set it to the number of "
                     "processes (or unset it for a single process).") from None
  if num_processes <= 1:
    return None
  pid = environ.get(ENV_PROCESS_ID)
  if pid is None or not pid.isdigit() or not 0 <= int(pid) < num_processes:
    raise ValueError(f"{ENV_NUM_PROCESSES}={num_processes} needs {ENV_PROCESS_ID} in "
                     f"[0, {num_processes}); got {pid!r}. Set it per process (0 on the "
                     f"coordinator at {address}).")
  return {"coordinator_address": address, "num_processes": num_processes, "process_id": int(pid)}


def initialize(multihost: bool | None = None) -> bool:
  """Joins the process group if asked to (``multihost``) or if the environment says so.

  Args:
    multihost: True: always call ``jax.distributed.initialize`` (with the environment's
      settings if any, else JAX's cluster auto-detection). False: never. None: only when
      ``env_settings`` finds several processes.

  Returns:
    Whether ``jax.distributed`` was initialized by this call.
  """
  if multihost is False:
    return False
  settings = env_settings()
  if settings is None and not multihost:
    return False
  if jax.distributed.is_initialized():
    return False
  jax.distributed.initialize(**(settings or {}))
  return True


def is_primary() -> bool:
  """Whether this process writes logs, metrics and pictures (process 0)."""
  return jax.process_index() == 0


def say(message: str) -> None:
  """Prints ``message`` (flushed) on process 0 only: one line per run, not per process."""
  if is_primary():
    print(message, flush=True)


def global_mesh() -> Mesh:
  """A one-axis ``data`` mesh over every device of every process."""
  return Mesh(np.array(jax.devices()), ("data",))


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Host values (the same on every process) as arrays replicated over the whole mesh.

  Typed PRNG keys are carried as their key data. With one process this equals
  ``jax.device_put(tree, NamedSharding(mesh, P()))``.
  """
  sharding = NamedSharding(mesh, P())

  def put(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
    value = np.asarray(x)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

  return jax.tree.map(put, tree)


def local_rows(sharding: NamedSharding, global_shape: tuple[int, ...], axis: int) -> slice:
  """The contiguous range of ``axis`` that this process's devices hold under ``sharding``."""
  spans = [index[axis] for index in sharding.addressable_devices_indices_map(global_shape).values()]
  start = min(s.start or 0 for s in spans)
  stop = max(global_shape[axis] if s.stop is None else s.stop for s in spans)
  return slice(start, stop)


def global_batch(indices: np.ndarray, sources: Mapping[str, np.ndarray],
                 mesh: Mesh) -> dict[str, Any]:
  """Global batches ``{name: sources[name][indices], "index": indices}`` split over the mesh.

  ``indices`` (``[steps, B]``, the same on every process) picks the examples; the batch axis
  (axis 1) is split over the mesh's ``data`` axis. Each process gathers and transfers only the
  columns its own devices hold, so no process feeds another's share.
  """
  sharding = NamedSharding(mesh, P(None, "data"))
  indices = np.asarray(indices)
  mine = indices[:, local_rows(sharding, indices.shape, 1)]
  out = {}
  for name, source in (*sources.items(), ("index", None)):
    local = mine if source is None else np.asarray(source[mine])
    local = local.astype(jax.dtypes.canonicalize_dtype(local.dtype))  # int64 -> int32 w/o x64
    shape = indices.shape + local.shape[2:]
    out[name] = jax.make_array_from_process_local_data(sharding, local, shape)
  return out
