"""Turns off XLA:CPU's YNNPACK fusions on the jaxlib versions that miscompile them.

jaxlib 0.10.2 (and later releases that still ship the same fusion pass) can return wrong values
on CPU for a reduction that feeds a further elementwise operation on large arrays, e.g.

    f = lambda z, w: jnp.sum(w * z, -1) * 2      # z: [2000, 32, 2], w: [32, 2]
    jax.jit(f)(z, w)                               # rows from 1024 on are off by O(1)

(jax-ml/jax#39103; jaxlib 0.10.1 is correct). Flows and Monte Carlo KLs over ``[k, B, D]``
draws have exactly this shape. On those versions the option
``xla_cpu_experimental_ynn_fusion_type=""`` (no YNNPACK fusion) gives the correct results, and
it is set in two places:

* Per compilation: every function the package compiles goes through `jit` below, which passes
  the option to ``jax.jit(..., compiler_options=...)`` when it compiles for the CPU. This holds
  whatever the import order.
* For the whole process: importing ``pareto_vae_jax`` appends the flag to ``XLA_FLAGS``, so
  that your own ``jax.jit`` of the package's functions is also correct. That acts only if JAX
  has not created its CPU backend yet; if it has (``jax.devices()`` or ``jax.default_backend()``
  ran first), the import warns once and your own jits need ``cpu_compiler_options()``::

      jax.jit(my_loss, compiler_options=pareto_vae_jax.cpu_compiler_options())

``PVJ_KEEP_YNN_FUSION=1`` opts out of both. ``tests/test_xla_workaround.py`` checks both orders.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings

OPTION = "xla_cpu_experimental_ynn_fusion_type"
_FLAG = f"--{OPTION}="
# jaxlib versions known to have the fusion pass (and so to accept the option); an unknown
# option would make XLA abort, so newer versions are left alone until checked.
_AFFECTED = ((0, 10, 2), (0, 12, 0))


def _version(text: str) -> tuple[int, ...]:
  parts = []
  for piece in text.split(".")[:3]:
    digits = "".join(ch for ch in piece if ch.isdigit())
    parts.append(int(digits or 0))
  return tuple(parts)


def _jaxlib_version() -> str:
  try:
    from importlib.metadata import version
    return version("jaxlib")
  except Exception:  # pylint: disable=broad-except
    return "0"


def affected(jaxlib_version: str, environ=os.environ) -> bool:
  """Whether this jaxlib has the faulty fusion and the user has not opted out."""
  if environ.get("PVJ_KEEP_YNN_FUSION") == "1":
    return False
  lo, hi = _AFFECTED
  return lo <= _version(jaxlib_version) < hi


def needed(jaxlib_version: str, environ=os.environ) -> bool:
  """Whether to append the flag to ``XLA_FLAGS`` (affected, and not set there already)."""
  return affected(jaxlib_version, environ) and _FLAG.split("=")[0] not in environ.get(
      "XLA_FLAGS", "")


@functools.cache
def _options_for(backend: str) -> tuple[tuple[str, str], ...]:
  return ((OPTION, ""),) if backend == "cpu" and affected(_jaxlib_version()) else ()


def cpu_compiler_options(backend: str | None = None) -> dict[str, str] | None:
  """``compiler_options`` for ``jax.jit`` on ``backend`` (default: JAX's default backend).

  ``{"xla_cpu_experimental_ynn_fusion_type": ""}`` on the CPU with an affected jaxlib, else
  None (what ``jax.jit`` takes for "no options").
  """
  if backend is None:
    import jax
    backend = jax.default_backend()
  return dict(_options_for(backend)) or None


def jit(fun=None, /, **kwargs):
  """``jax.jit`` with `cpu_compiler_options` added; usable as ``@jit`` or ``jit(f, ...)``.

  The backend is JAX's default one when the function is wrapped, which is where it will run.
  """
  if fun is None:
    return functools.partial(jit, **kwargs)
  import jax
  options = cpu_compiler_options()
  if options:
    kwargs["compiler_options"] = {**options, **(kwargs.get("compiler_options") or {})}
  return jax.jit(fun, **kwargs)


def _backend_exists() -> bool:
  if "jax" not in sys.modules:
    return False
  try:
    from jax._src import xla_bridge
    return xla_bridge.backends_are_initialized()
  except Exception:  # pylint: disable=broad-except  (a private module; assume the worst)
    return True


def apply(environ=os.environ) -> bool:
  """Appends the flag to ``XLA_FLAGS`` when needed; returns whether it did.

  When JAX's backends already exist the flag could not act: nothing is changed and a warning
  (once per process) says what still holds and what to do for the user's own jits.
  """
  if not needed(_jaxlib_version(), environ):
    return False
  if _backend_exists():
    warnings.warn(
        "pareto_vae_jax was imported after JAX created its backends, so its XLA_FLAGS "
        f"workaround for a jaxlib CPU miscompilation (jax-ml/jax#39103: {OPTION}) cannot "
        "take effect. Everything pareto_vae_jax compiles passes the option itself; for your "
        "own jax.jit over its functions on the CPU pass compiler_options="
        "pareto_vae_jax.cpu_compiler_options(), or import pareto_vae_jax before using jax. "
        "PVJ_KEEP_YNN_FUSION=1 silences this.",
        RuntimeWarning,
        stacklevel=3)
    return False
  environ["XLA_FLAGS"] = (environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
  return True


apply()
