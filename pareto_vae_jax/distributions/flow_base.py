"""What planar flows and IAF share: their diagonal-Gaussian base, and draws and densities
through a flow's transform and inverse.

Both flows (``planar.py``, ``iaf.py``) start from a diagonal Gaussian ``z0 = loc + scale * eps``,
``eps ~ N(0, I)``, and push it through invertible maps whose log-determinants are cheap, so a
draw comes with its density (change of variables, the notes, eq. 18; see docs/REFERENCES.md):

    log q(z_K) = log N(eps; 0, I) - sum_d log scale_d - sum_k log|det df_k/dz_{k-1}|.

Densities are joint over the last axis (``event_ndim = 1``): draws have shape
``sample_shape + batch + [D]`` and log-densities ``sample_shape + batch``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from pareto_vae_jax.distributions import base

Array = jax.Array
Transform = Callable[[Any, ArrayLike], tuple[Array, Array]]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def check_positive(cls_name: str, name: str, value: Array, fix: str) -> None:
  """Raises ``ValueError`` naming the parameter where a concrete ``value`` is not > 0."""
  if base._is_concrete(value):
    bad = ~(np.asarray(value) > 0)
    if bad.any():
      raise ValueError(
          f"{cls_name}: parameter '{name}' must be > 0 everywhere; got "
          f"{np.asarray(value)[bad].ravel()[:3]} at {int(bad.sum())} position(s). {fix}")


def broadcast_batch(cls_name: str, parts: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
  """The common batch shape of the parameters' ``parts``, or a ``ValueError`` naming them."""
  try:
    return jnp.broadcast_shapes(*parts.values())
  except ValueError:
    described = ", ".join(f"{k} {v}" for k, v in parts.items())
    raise ValueError(
        f"{cls_name}: the batch shapes of the parameters do not broadcast ({described}). Give "
        "every parameter the same leading batch axes, or leave shared ones without them.") from None


def _standard_normal_log_prob(eps: Array) -> Array:
  return jnp.sum(-0.5 * eps * eps - _HALF_LOG_2PI, -1)


def base_draw(loc: Array, scale: Array, batch_shape: tuple[int, ...],
              eps: ArrayLike) -> tuple[Array, Array]:
  """``z0 = loc + scale * eps``, shape ``[..., batch, D]``, and ``log q0(z0)``, ``[..., batch]``."""
  eps = jnp.asarray(eps, loc.dtype)
  z = loc + scale * eps
  z = jnp.broadcast_to(z, jnp.broadcast_shapes(z.shape, batch_shape + loc.shape[-1:]))
  log_q = _standard_normal_log_prob(eps) - jnp.sum(jnp.log(scale), -1)
  return z, jnp.broadcast_to(log_q, z.shape[:-1])


def rsample_and_log_prob(key: Array, dist: Any, sample_shape: tuple[int, ...],
                         transform: Transform) -> tuple[Array, Array]:
  """Reparameterized draws ``sample_shape + batch + [D]`` of a flow and their log-density."""
  eps = jax.random.normal(key,
                          tuple(sample_shape) + dist.batch_shape + dist.event_shape, dist.dtype)
  return transform(dist, eps)


def log_prob(dist: Any, z: ArrayLike, transform: Transform,
             inverse: Callable[[Any, ArrayLike], tuple[Array, Array]]) -> Array:
  """``log q(z)`` at arbitrary points: the flow's ``transform`` at the noise its ``inverse`` finds.

  Where a strongly contracting flow sends ``z`` back to a base point beyond the floating-point
  range, the density has underflowed and the result is ``-inf``.
  """
  eps = inverse(dist, z)[1]
  log_q = transform(dist, eps)[1]
  return jnp.where(jnp.all(jnp.isfinite(eps), -1), log_q, -jnp.inf)
