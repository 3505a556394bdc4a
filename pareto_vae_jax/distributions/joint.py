"""Joint latent families: densities over the whole latent vector, not one dimension at a time.

The families of ``base`` are factorized: their functions act elementwise and their KLs are per
dimension. A *joint* family couples the dimensions: the full-covariance Gaussian
(``full_cov_gaussian``), planar flows and inverse autoregressive flows (``flows``). The trainer
uses each through one contract, registered here:

* ``num_raw(latent_dim, options)``: how many encoder outputs one posterior takes;
* ``from_flat(raw, latent_dim, options, shared)``: the posterior from those outputs (``shared``:
  parameters common to every example, e.g. the IAF's MADE weights, made by ``init_shared``);
* ``transform(dist, eps) -> (z, log q(z))``: a reparameterized draw from standard-normal noise
  ``eps`` of shape ``[..., D]`` (broadcasting against the batch) with its joint log-density. A
  flow's density at an arbitrary point needs its inverse; at its own draws it is free;
* ``log_prob(dist, z)``: the joint log-density anywhere, where tractable (None for flows).

``options`` are the trainer's structure settings (``flow_layers``, ``iaf_steps``, ``iaf_hidden``,
``iaf_context``). Closed-form KLs between joint and factorized distributions are registered
with ``register_joint_kl``; every other pair uses the Monte Carlo estimate
``log q(z) - log p(z)`` at the same draw.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import base

Array = jax.Array


@dataclasses.dataclass(frozen=True)
class JointFamilyInfo:
  """What the trainer needs to know about a joint latent family (see the module docstring).

  Attributes:
    name: the identifier used by ``--latent=<name>``.
    cls: the distribution class (a pytree with ``event_ndim = 1``).
    num_raw: ``(latent_dim, options) -> int``.
    from_flat: ``(raw, latent_dim, options, shared) -> dist``.
    transform: ``(dist, eps) -> (z, log_q)``.
    log_prob: ``(dist, z) -> log q(z)`` of shape ``[...]``, or None when intractable.
    mean: ``dist -> E[z]``, or None (estimate it from draws).
    init_shared: ``(key, latent_dim, options) -> pytree`` of parameters shared by all examples
      (learned with the networks), or None.
    description: one line for the README's family table.
  """

  name: str
  cls: type
  num_raw: Callable[[int, Mapping[str, int]], int]
  from_flat: Callable[..., Any]
  transform: Callable[[Any, Array], tuple[Array, Array]]
  log_prob: Callable[[Any, Array], Array] | None = None
  mean: Callable[[Any], Array] | None = None
  init_shared: Callable[..., Any] | None = None
  description: str = ""


_BY_NAME: dict[str, JointFamilyInfo] = {}
_BY_TYPE: dict[type, JointFamilyInfo] = {}
_KL: dict[tuple[type, type], Callable[[Any, Any], Array]] = {}


def register_joint_family(info: JointFamilyInfo) -> JointFamilyInfo:
  if info.name in _BY_NAME:
    raise ValueError(f"A joint family named '{info.name}' is already registered.")
  _BY_NAME[info.name] = info
  _BY_TYPE[info.cls] = info
  return info


def register_joint_kl(q_type: type, p_type: type):
  """Decorator: registers a closed-form joint ``KL(q || p)`` returning shape ``[...]``."""

  def wrap(fn):
    _KL[(q_type, p_type)] = fn
    return fn

  return wrap


def joint_family_names() -> tuple[str, ...]:
  return tuple(_BY_NAME)


def latent_names() -> tuple[str, ...]:
  """Every name ``--latent`` accepts: the factorized families, then the joint ones."""
  return (*base.family_names(), *joint_family_names())


def is_joint_family(name: str) -> bool:
  return name in _BY_NAME


def is_joint(dist: Any) -> bool:
  """Whether ``dist`` (an instance or a class) is of a registered joint family."""
  return (dist if isinstance(dist, type) else type(dist)) in _BY_TYPE


def joint_info(name_or_dist: Any) -> JointFamilyInfo:
  if isinstance(name_or_dist, str):
    if name_or_dist not in _BY_NAME:
      raise ValueError(f"Unknown joint family '{name_or_dist}'; registered: "
                       f"{', '.join(_BY_NAME)}.")
    return _BY_NAME[name_or_dist]
  return _BY_TYPE[type(name_or_dist)]


def has_closed_form_joint_kl(q_type: type, p_type: type) -> bool:
  return (q_type, p_type) in _KL


def joint_kl(q: Any, p: Any) -> Array:
  """Closed-form ``KL(q || p)`` of shape ``[...]`` for a registered pair."""
  fn = _KL.get((type(q), type(p)))
  if fn is None:
    raise NotImplementedError(f"No closed-form KL({type(q).__name__} || {type(p).__name__}); "
                              "use the Monte Carlo estimate log q(z) - log p(z).")
  return fn(q, p)


def event_dim(dist: Any) -> int:
  """The latent dimension D of a joint distribution (its draws' last axis)."""
  return dist.event_shape[-1]


def per_dim_params(dist: Any) -> dict[str, Array]:
  """The per-dimension parameters of a joint posterior, ``[..., D]`` each, for histograms:
  ``loc`` and the base scale (flows) or the diagonal of ``L`` (full covariance)."""
  out = {"loc": dist.loc}
  if hasattr(dist, "scale_tril"):
    out["scale_diag"] = jnp.diagonal(dist.scale_tril, axis1=-2, axis2=-1)
  if hasattr(dist, "scale"):
    out["scale"] = dist.scale
  return out


def code_mean(dist: Any, key: Array, num_samples: int = 64) -> Array:
  """``E[z]`` of each example: closed form where registered, else the mean of draws."""
  info = joint_info(dist)
  if info.mean is not None:
    return info.mean(dist)
  keys = jax.random.split(key, dist.batch_shape[0])
  return jnp.mean(sample_with_log_prob(keys, dist, num_samples)[0], 0)


def sample_with_log_prob(keys: Array, dist: Any, num_samples: int | None = None
                         ) -> tuple[Array, Array]:
  """One draw per example (one key each) and its joint log-density.

  Args:
    keys: ``[B]`` keys, one per example of the batch ``dist`` describes (batch shape ``[B]``).
    dist: a joint distribution.
    num_samples: None for one draw per example, else k draws per example.

  Returns:
    ``z`` of shape ``[B, D]`` (or ``[k, B, D]``) and ``log q(z)`` of shape ``[B]`` (``[k, B]``).
    The noise of example ``i`` comes from ``keys[i]`` alone, so a draw does not depend on the
    batch it lands in.
  """
  d = event_dim(dist)
  shape = (d,) if num_samples is None else (num_samples, d)
  eps = jax.vmap(lambda k: jax.random.normal(k, shape),
                 out_axes=0 if num_samples is None else 1)(keys)
  return joint_info(dist).transform(dist, eps)
