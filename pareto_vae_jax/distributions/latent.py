"""A latent vector of any registered family: draws, densities and the KL term the trainer uses.

Every function reads the one registry (``registry.py``), so factorized families, joint ones
and mixture priors go through the same code; ``event_ndim`` and the registered functions make
the difference:

* a family with ``transform`` (full covariance, flows) is drawn from standard-normal noise, its
  draw coming with its log-density; any other is drawn with ``rsample``, in log space where
  its support is positive (``rsample_log``, ``log_prob_log``), and scored at the draw;
* a factorized family's log-density is per dimension and sums to the vector's; a joint one's is
  one number per vector;
* ``KL(q || p)`` is the registered closed form where there is one, else the single-draw
  estimate ``log q(z) - log p(z)`` at the decoded draw. A KL of the whole vector is shared
  equally by the dimensions, so that the trainer's ``[B, D]`` terms always sum to the KL.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import registry

Array = jax.Array


def in_log_space(dist: Any) -> bool:
  """Whether ``dist`` is drawn and scored in log space: its support is (0, inf)."""
  info = registry.family_info(dist)
  if info.log_space is not None:
    return info.log_space(dist)
  return info.rsample_log is not None


def sample_and_log_prob(keys: Array,
                        dist: Any,
                        num_samples: int | None = None) -> tuple[Array, bool, Array]:
  """Draws per example (one key each) with the log-density of each whole vector.

  Args:
    keys: ``[B]`` keys, one per example of the batch ``dist`` describes (batch shape ``[B]``,
      or ``[B, D]`` for a factorized family).
    dist: any registered distribution.
    num_samples: None for one draw per example, else k draws per example.

  Returns:
    ``(draw, in_log, log_prob)``: the draw ``[B, D]`` (``[k, B, D]``), as ``log z`` where
    ``in_log``; and ``log p(z)`` of each vector, ``[B]`` (``[k, B]``). The noise of example
    ``i`` comes from ``keys[i]`` alone, so a draw does not depend on the batch it lands in. A
    ``transform`` family's density comes with its draw (a flow's change of variables); any
    other's is evaluated at the draw.
  """
  info = registry.family_info(dist)
  out_axes = 0 if num_samples is None else 1
  shape = () if num_samples is None else (num_samples,)
  if info.transform is not None:
    eps_shape = shape + tuple(dist.event_shape[-1:])
    eps = jax.vmap(lambda k: jax.random.normal(k, eps_shape), out_axes=out_axes)(keys)
    z, log_q = info.transform(dist, eps)
    return z, False, log_q
  in_log = in_log_space(dist)
  sampler = info.rsample_log if in_log else info.rsample
  r = jax.vmap(lambda k, d: sampler(k, d, shape), out_axes=out_axes)(keys, dist)
  return r, in_log, log_prob_vector(dist, r, in_log)


def log_prob_event(dist: Any, draw: Array, in_log: bool) -> Array:
  """The family's own log-density at ``draw`` (``log z`` where ``in_log``).

  Per dimension (``[..., D]``) for a factorized family; per vector (``[...]``) for a joint one.

  Raises:
    ValueError: the family's density is known only at its own draws (the flows).
  """
  info = registry.family_info(dist)
  fn = info.log_prob_log if in_log else info.log_prob
  if fn is None:
    raise ValueError(f"{type(dist).__name__}'s density is known only at its own draws; use "
                     "sample_and_log_prob (vae.sample_and_log_q).")
  return fn(dist, draw)


def log_prob_vector(dist: Any, draw: Array, in_log: bool) -> Array:
  """``log p(z)`` of each whole latent vector, ``[...]`` for ``draw`` of shape ``[..., D]``."""
  lp = log_prob_event(dist, draw, in_log)
  return jnp.sum(lp, -1) if registry.event_ndim(dist) == 0 else lp


def _shared(value: Array, shape: tuple[int, ...]) -> Array:
  # A value of the whole vector, [...], split equally over the D dimensions of shape [..., D].
  return jnp.broadcast_to(value[..., None] / shape[-1], shape)


def log_prob_shares(dist: Any, draw: Array, in_log: bool) -> Array:
  """Per-dimension shares ``[..., D]`` of ``log p(z)`` that sum to the vector's.

  A factorized family's own per-dimension log-densities; a joint density split equally.
  """
  lp = log_prob_event(dist, draw, in_log)
  return lp if registry.event_ndim(dist) == 0 else _shared(lp, draw.shape)


def kl_method(q: Any, p: Any) -> str:
  """How the objective gets ``KL(q || p)`` for these posterior and prior (types or instances).

  ``closed``: the KL table's closed form, per dimension (both factorized); ``closed_joint``: its
  closed form of the whole vector (either joint); without one, the single-draw estimate:
  ``estimate_joint`` of the whole vector (a joint posterior: the flows), ``mixture`` per
  dimension against a prior whose density is joint (a mixture; its share 1/D per dimension),
  ``estimate`` per dimension (both factorized). ``vae.describe_kl`` says it in a sentence.
  """
  q_cls, p_cls = (c if isinstance(c, type) else type(c) for c in (q, p))
  q_ndim, p_ndim = registry.event_ndim(q_cls), registry.event_ndim(p_cls)
  if registry.has_closed_form_kl(q_cls, p_cls):
    return "closed_joint" if max(q_ndim, p_ndim) else "closed"
  if q_ndim:
    return "estimate_joint"
  return "mixture" if p_ndim else "estimate"


def kl_or_estimate(q: Any, p: Any, draw: Array, in_log: bool, log_q: Array) -> Array:
  """Per-dimension KL terms ``[B, D]``: closed form or single-draw estimate (``kl_method``).

  Args:
    q: the posterior, batch ``[B]`` (``[B, D]`` if factorized).
    p: the prior, likewise.
    draw: the decoded draw from ``q``, ``[B, D]`` (``log z`` where ``in_log``).
    in_log: whether ``draw`` is in log space.
    log_q: ``log q(draw)`` of each vector, ``[B]`` (``sample_and_log_prob``'s; a flow's density
      is known only there).

  Returns:
    ``[B, D]`` terms summing to the KL (or its estimate) of each example; a KL of the whole
    vector is shared equally by the dimensions.
  """
  method = kl_method(q, p)
  if method == "closed":
    return registry.kl(q, p)
  if method == "closed_joint":
    return _shared(registry.kl(q, p), draw.shape)
  if method == "estimate_joint":
    return _shared(log_q - log_prob_vector(p, draw, in_log), draw.shape)
  # The order of evaluation (a joint prior's density before q's, a factorized one's after) is
  # the order in which the draw's gradient contributions add up: kept as the trainer has always
  # had it, so that training runs stay bit-identical.
  if method == "mixture":
    log_p = log_prob_shares(p, draw, in_log)
    return log_prob_event(q, draw, in_log) - log_p
  return log_prob_event(q, draw, in_log) - log_prob_event(p, draw, in_log)
