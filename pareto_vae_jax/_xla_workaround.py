"""Turns off XLA:CPU's YNNPACK fusions on the jaxlib versions that miscompile them.

jaxlib 0.10.2 (and later releases that still ship the same fusion pass) can return wrong values
on CPU for a reduction that feeds a further elementwise operation on large arrays, e.g.

    f = lambda z, w: jnp.sum(w * z, -1) * 2      # z: [2000, 32, 2], w: [32, 2]
    jax.jit(f)(z, w)                               # rows from 1024 on are off by O(1)

(jax-ml/jax#39103; jaxlib 0.10.1 is correct). Flows and Monte Carlo KLs over ``[k, B, D]``
draws have exactly this shape, so on those versions this module adds
``--xla_cpu_experimental_ynn_fusion_type=`` (no YNNPACK fusion) to ``XLA_FLAGS``, which gives the
correct results (``tests/test_xla_workaround.py``). It must run before JAX creates its CPU
backend; importing ``pareto_vae_jax`` first does that. ``PVJ_KEEP_YNN_FUSION=1`` opts out.
"""

from __future__ import annotations

import os

_FLAG = "--xla_cpu_experimental_ynn_fusion_type="
# jaxlib versions known to have the fusion pass (and so to accept the flag); an unknown flag
# would make XLA abort, so newer versions are left alone until checked.
_AFFECTED = ((0, 10, 2), (0, 12, 0))


def _version(text: str) -> tuple[int, ...]:
  parts = []
  for piece in text.split(".")[:3]:
    digits = "".join(ch for ch in piece if ch.isdigit())
    parts.append(int(digits or 0))
  return tuple(parts)


def needed(jaxlib_version: str, environ=os.environ) -> bool:
  """Whether to add the flag for this jaxlib version and environment."""
  if environ.get("PVJ_KEEP_YNN_FUSION") == "1" or _FLAG.split("=")[0] in environ.get(
      "XLA_FLAGS", ""):
    return False
  lo, hi = _AFFECTED
  return lo <= _version(jaxlib_version) < hi


def apply() -> bool:
  """Adds the flag to ``XLA_FLAGS`` when needed; returns whether it did."""
  try:
    from importlib.metadata import version
    jaxlib_version = version("jaxlib")
  except Exception:  # pylint: disable=broad-except
    return False
  if not needed(jaxlib_version):
    return False
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
  return True


apply()
