"""Test-wide setup: four host CPU devices, so that pmap and sharding tests have a mesh.

The flag must be set before JAX initializes its backends, hence here and not in a fixture.
"""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# The XLA:CPU miscompilation workaround, before any test module builds the backend.
from pareto_vae_jax import _xla_workaround  # noqa: E402,F401
