"""Normalizing-flow posteriors of either kind: planar flows and inverse autoregressive flows.

Each flow lives and registers itself in its own file (``planar.py``, ``iaf.py``; what they share
in ``flow_base.py``). This module keeps the names they had when they shared one file
(``flows.PlanarFlow``, ``flows.planar_from_flat``, ``flows.made_init``, ...), which the README,
the notebooks and the tests use, and the functions that take either flow.

Example, in a trainer's loss (``encoder`` returns ``[B, planar_num_raw(D, K)]`` raw outputs)::

  q = flows.planar_from_flat(encoder(x), D, K)
  z, log_q = flows.rsample_and_log_prob(key, q, (num_draws,))   # [n, B, D], [n, B]
  kl = log_q - prior_log_prob(z).sum(-1)                         # Monte Carlo KL per draw
"""

from __future__ import annotations

import jax

from pareto_vae_jax.distributions import iaf, planar
from pareto_vae_jax.distributions.iaf import (  # noqa: F401 (re-exported)
    IAF, MadeParams, iaf_from_flat, iaf_inverse, iaf_num_raw, made_apply, made_init,
)
from pareto_vae_jax.distributions.planar import (  # noqa: F401 (re-exported)
    PlanarFlow, planar_from_flat, planar_inverse, planar_layer, planar_num_raw, planar_u_hat,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
Flow = PlanarFlow | IAF

# Each flow's module. The registry holds each flow's transform, but not the density through the
# inverse (``log_prob`` here), which the trainer never uses.
_MODULES = {PlanarFlow: planar, IAF: iaf}


def _module(dist: Flow):
  try:
    return _MODULES[type(dist)]
  except KeyError:
    raise TypeError(f"Expected a PlanarFlow or an IAF; got {type(dist).__name__}. Build one with "
                    "planar_from_flat or iaf_from_flat.") from None


def transform(dist: Flow, eps: ArrayLike) -> tuple[Array, Array]:
  """The flow applied to standard-normal noise: ``z`` and ``log q(z)``.

  Args:
    dist: a ``PlanarFlow`` or an ``IAF``.
    eps: standard-normal noise, shape ``[..., D]`` broadcasting against the batch (e.g.
      ``[k, B, D]`` for a batch ``[B]``).

  Returns:
    ``(z, log_q)`` with shapes ``broadcast(eps, batch + [D])`` and the same without ``D``.
  """
  return _module(dist).transform(dist, eps)


def rsample_and_log_prob(key: Array, dist: Flow,
                         sample_shape: tuple[int, ...] = ()) -> tuple[Array, Array]:
  """Reparameterized draws ``sample_shape + batch + [D]`` and their log-density."""
  return _module(dist).rsample_and_log_prob(key, dist, sample_shape)


def rsample(key: Array, dist: Flow, sample_shape: tuple[int, ...] = ()) -> Array:
  """Reparameterized draws of shape ``sample_shape + batch + [D]``."""
  return _module(dist).rsample(key, dist, sample_shape)


def log_prob(dist: Flow, z: ArrayLike) -> Array:
  """``log q(z)`` at arbitrary points via the inverse, shape ``broadcast(z, batch + [D])[:-1]``.

  Costs an inversion (bisection per planar layer, ``D`` passes per IAF step); the trainer
  never needs it, since draws come with their density. Where a strongly contracting flow sends
  ``z`` back to a base point beyond the floating-point range, the density has underflowed and
  the result is ``-inf``.
  """
  return _module(dist).log_prob(dist, z)
