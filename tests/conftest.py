"""Test-wide setup: four host CPU devices, so that pmap and sharding tests have a mesh.

The flag must be set before JAX initializes its backends, hence here and not in a fixture.
"""

import os

import chex

chex.set_n_cpu_devices(4)  # into XLA_FLAGS, which subprocesses and notebook kernels inherit
# XLA:CPU's collective rendezvous limit (40 s) is left at its default: the one abort these
# tests have met was a deadlock, not a slow thread (tests/test_parallel.py says which), and a
# higher limit only made it hang longer before failing.
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The XLA:CPU miscompilation workaround, before any test module builds the backend.
from pareto_vae_jax import _xla_workaround  # noqa: E402,F401
