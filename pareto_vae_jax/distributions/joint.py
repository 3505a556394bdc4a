"""Joint latent families: the former joint registry's functions, as views of the one registry.

A joint family's density couples the dimensions (``event_ndim = 1`` in ``registry.py``): the
full-covariance Gaussian (``full_cov_gaussian``), planar flows (``planar``) and inverse
autoregressive flows (``iaf``), each registered at the bottom of its own file. Their contract
(``transform``, ``num_raw``, ``from_flat``, ``init_shared``, ``log_prob``) is documented on
``registry.FamilyInfo``. The functions below keep the names user code and the tests know; the
posterior statistics at the end serve the evaluation's pictures.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import latent, registry

Array = jax.Array


def JointFamilyInfo(
    name: str,
    cls: type,  # noqa: N802 (it was a class)
    num_raw: Callable[[int, Mapping[str, int]], int],
    from_flat: Callable[..., Any],
    transform: Callable[[Any, Array], tuple[Array, Array]],
    log_prob: Callable[[Any, Array], Array] | None = None,
    mean: Callable[[Any], Array] | None = None,
    init_shared: Callable[..., Any] | None = None,
    description: str = "") -> registry.FamilyInfo:
  """The one registry's ``FamilyInfo`` of a joint family (``event_ndim = 1``).

  A view kept for the former joint registry's constructor and its arguments.
  """
  return registry.FamilyInfo(name=name,
                             cls=cls,
                             num_raw=num_raw,
                             from_flat=from_flat,
                             transform=transform,
                             log_prob=log_prob,
                             mean=mean,
                             init_shared=init_shared,
                             description=description,
                             event_ndim=1)


def register_joint_family(info: registry.FamilyInfo) -> registry.FamilyInfo:
  """``registry.register_family`` for a joint family: a view of the one registry."""
  if not info.is_joint_latent:
    raise ValueError(f"register_joint_family takes a joint latent family (event_ndim 1); "
                     f"'{info.name}' has event_ndim {info.event_ndim}. Use register_family.")
  return registry.register_family(info)


def register_joint_kl(q_type: type, p_type: type):
  """``registry.register_kl``: the one KL table holds closed forms of either kind (a view)."""
  return registry.register_kl(q_type, p_type)


def joint_family_names() -> tuple[str, ...]:
  """Names of the joint latent families, in registration order: a view of the one registry."""
  return tuple(i.name for i in registry.registered() if i.is_joint_latent)


latent_names = registry.latent_names


def is_joint_family(name: str) -> bool:
  """Whether ``name`` is a registered joint latent family: a view of the one registry."""
  return name in joint_family_names()


def is_joint(dist: Any) -> bool:
  """Whether ``dist`` (an instance or a class) is of a registered joint latent family.

  A view of the one registry: ``event_ndim`` 1, mixture priors excluded.
  """
  return registry.is_registered(dist) and registry.family_info(dist).is_joint_latent


def joint_info(name_or_dist: Any) -> registry.FamilyInfo:
  """``registry.family_info`` of a joint latent family: a view of the one registry."""
  info = registry.family_info(name_or_dist)
  if not info.is_joint_latent:
    raise (ValueError if isinstance(name_or_dist, str) else TypeError)(
        f"'{info.name}' is not a joint latent family; registered: "
        f"{', '.join(joint_family_names())}.")
  return info


def has_closed_form_joint_kl(q_type: type, p_type: type) -> bool:
  """Whether the one KL table has a closed form for a joint posterior type (a view)."""
  return is_joint(q_type) and registry.has_closed_form_kl(q_type, p_type)


def joint_kl(q: Any, p: Any) -> Array:
  """Closed-form ``KL(q || p)`` of shape ``[...]``: ``registry.kl``, a view of the one table."""
  return registry.kl(q, p)


def sample_with_log_prob(keys: Array,
                         dist: Any,
                         num_samples: int | None = None) -> tuple[Array, Array]:
  """One draw per example (one key each) and its joint log-density.

  ``latent.sample_and_log_prob`` without its ``in_log`` (always False for a joint family).

  Returns:
    ``z`` of shape ``[B, D]`` (or ``[k, B, D]``) and ``log q(z)`` of shape ``[B]`` (``[k, B]``).
  """
  z, _, log_q = latent.sample_and_log_prob(keys, dist, num_samples)
  return z, log_q


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
