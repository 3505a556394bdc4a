"""Shared machinery for latent families: the pytree base class and the dispatching functions.

A family is an immutable dataclass of parameter arrays. Its math lives in module-level pure
functions (``rsample``, ``log_prob``, ...) that the family registers in the one registry
(``registry.py``), so that the functions here dispatch on the type of their argument and a new
family joins without editing anything else.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Sequence

import jax
import jax.numpy as jnp
import numpy as np

# The registry's names, re-exported: a family file may register itself through ``base``.
from pareto_vae_jax.distributions.registry import (  # noqa: F401
    FamilyInfo, KLNotImplementedError, family_info, family_names, has_closed_form_kl, kl,
    register_family, register_kl,
)

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
Shape = Sequence[int]


def _is_concrete(x: Any) -> bool:
  return not isinstance(x, jax.core.Tracer)


class Distribution:
  """Base class: an immutable pytree whose leaves are the parameter arrays.

  Subclasses set ``param_names`` and ``positive`` (the names that must be > 0). The
  constructor converts parameters to floating arrays, broadcasts them to a common
  ``batch_shape`` and, when the values are concrete (not traced by jit/vmap/grad), checks
  positivity and raises ``ValueError`` naming the parameter. Under a transformation the
  values cannot be inspected; a non-positive value then yields ``nan`` downstream.
  Unflattening a pytree (which JAX does inside every transformation) bypasses the checks.
  """

  param_names: ClassVar[tuple[str, ...]] = ()
  positive: ClassVar[tuple[str, ...]] = ()

  def __init__(self, *params: ArrayLike):
    cls_name = type(self).__name__
    if len(params) != len(self.param_names):
      raise TypeError(f"{cls_name} takes parameters {self.param_names}, got {len(params)} values.")
    dtype = jnp.result_type(*params, float)
    arrays = jnp.broadcast_arrays(*(jnp.asarray(p, dtype) for p in params))
    for name, value in zip(self.param_names, arrays):
      if name in self.positive and _is_concrete(value):
        bad = ~(np.asarray(value) > 0)
        if bad.any():
          raise ValueError(f"{cls_name}: parameter '{name}' must be > 0 everywhere; got "
                           f"{np.asarray(value)[bad].ravel()[:3]} at {int(bad.sum())} position(s). "
                           "Map unconstrained network outputs through a head such as "
                           "pareto_vae_jax.softplus_floor or pareto_vae_jax.elu_plus_one.")
      object.__setattr__(self, name, value)

  def __setattr__(self, name, value):
    raise dataclasses.FrozenInstanceError(f"{type(self).__name__} is immutable; use .replace().")

  @property
  def params(self) -> tuple[Array, ...]:
    return tuple(getattr(self, n) for n in self.param_names)

  @property
  def batch_shape(self) -> tuple[int, ...]:
    return tuple(self.params[0].shape)

  @property
  def dtype(self):
    return self.params[0].dtype

  def replace(self, **updates: ArrayLike):
    """A copy with some parameters replaced (validated like the constructor)."""
    values = {n: getattr(self, n) for n in self.param_names} | updates
    return type(self)(*(values[n] for n in self.param_names))

  def __repr__(self) -> str:
    inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.param_names)
    return f"{type(self).__name__}({inner})"

  def __init_subclass__(cls, **kwargs):
    super().__init_subclass__(**kwargs)

    def flatten(d):
      return d.params, None

    def unflatten(_, leaves):
      obj = object.__new__(cls)
      for n, v in zip(cls.param_names, leaves):
        object.__setattr__(obj, n, v)
      return obj

    def flatten_with_keys(d):
      return tuple((jax.tree_util.GetAttrKey(n), getattr(d, n)) for n in cls.param_names), None

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)


def _sample_shape(sample_shape: int | Shape) -> tuple[int, ...]:
  return (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)


def _registered(dist: Any, field: str):
  fn = getattr(family_info(dist), field)
  if fn is None:
    raise TypeError(f"{type(dist).__name__} registers no {field}; see its module for what it "
                    "offers instead.")
  return fn


def rsample(key: Array, dist: Distribution, sample_shape: int | Shape = ()) -> Array:
  """Draws a reparameterized sample: gradients flow to every parameter of ``dist``.

  Args:
    key: a JAX PRNG key.
    dist: any registered distribution.
    sample_shape: leading shape of independent draws.

  Returns:
    An array of shape ``sample_shape + dist.batch_shape`` (``+ [D]`` for a joint family).
  """
  return _registered(dist, "rsample")(key, dist, _sample_shape(sample_shape))


def rsample_log(key: Array, dist: Distribution, sample_shape: int | Shape = ()) -> Array:
  """Draws ``log z`` for a positive family, reparameterized, without forming ``z``.

  Use this where ``z`` itself may overflow (a Pareto with small ``alpha``). The same key gives
  ``log`` of the draw ``rsample`` gives.

  Args:
    key: a JAX PRNG key.
    dist: a Pareto, LogNormal or InverseGaussian (any family whose support is positive).
    sample_shape: leading shape of independent draws.

  Returns:
    ``log z`` with shape ``sample_shape + dist.batch_shape``.
  """
  info = family_info(dist)
  if info.rsample_log is None:
    raise TypeError(f"rsample_log needs a positive family; {type(dist).__name__} has real support.")
  return info.rsample_log(key, dist, _sample_shape(sample_shape))


def log_prob(dist: Distribution, z: ArrayLike) -> Array:
  """Log-density ``log q(z)`` (``-inf`` outside the support).

  Elementwise for a factorized family; for a joint one (``event_ndim`` 1) ``z`` has shape
  ``[..., D]`` and the result ``[...]``.
  """
  return _registered(dist, "log_prob")(dist, jnp.asarray(z))


def log_prob_log(dist: Distribution, log_z: ArrayLike) -> Array:
  """Elementwise ``log q(z)`` at ``z = exp(log_z)`` for positive families, without forming ``z``.

  This is the density of ``z`` (not of ``log z``); add ``log_z`` to get the density of ``log z``.
  """
  info = family_info(dist)
  if info.log_prob_log is None:
    raise TypeError(
        f"log_prob_log needs a positive family; {type(dist).__name__} has real support.")
  return info.log_prob_log(dist, jnp.asarray(log_z))


def mean(dist: Distribution) -> Array:
  """Elementwise mean; ``inf`` where it is infinite (e.g. a Pareto with ``alpha <= 1``)."""
  return _registered(dist, "mean")(dist)


def mean_log(dist: Distribution) -> Array:
  """Elementwise ``E[log z]`` of a positive family; finite wherever the parameters are valid."""
  info = family_info(dist)
  if info.mean_log is None:
    raise ValueError(f"mean_log needs a positive family with a closed form; '{info.name}' has "
                     "none (use mean() for a real-valued family).")
  return info.mean_log(dist)


def variance(dist: Distribution) -> Array:
  """Elementwise variance; ``inf`` where it is infinite (e.g. a Pareto with ``alpha <= 2``)."""
  return _registered(dist, "variance")(dist)
