"""Test-wide setup: four host CPU devices, so that pmap and sharding tests have a mesh.

The flag must be set before JAX initializes its backends, hence here and not in a fixture.
"""

import os

import chex

chex.set_n_cpu_devices(4)  # into XLA_FLAGS, which subprocesses and notebook kernels inherit
# The 4 host devices of a pmap run as threads that meet at each collective. On 2 loaded cores
# (CI runs two test workers) one of them can be starved past XLA:CPU's 40 s rendezvous limit,
# which aborts the whole process; reproduced with 4 busy loops beside tests/test_parallel.py,
# which then passes with the limit at 600 s.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_cpu_collective_call_terminate_timeout_seconds=600"
                           " --xla_cpu_collective_timeout_seconds=600").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The XLA:CPU miscompilation workaround, before any test module builds the backend.
from pareto_vae_jax import _xla_workaround  # noqa: E402,F401
