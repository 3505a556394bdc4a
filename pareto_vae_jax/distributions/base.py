"""Shared machinery for latent families: the pytree base class and the dispatch registries.

A family is an immutable dataclass of parameter arrays. Its math lives in module-level pure
functions (``rsample``, ``log_prob``, ...) that the family registers here, so that the public
functions dispatch on the type of their argument and a new family joins without editing
anything else.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
Shape = Sequence[int]


class KLNotImplementedError(NotImplementedError):
  """Raised by ``kl(q, p)`` for a pair of types without a registered closed form."""


@dataclasses.dataclass(frozen=True)
class FamilyInfo:
  """What the rest of the library needs to know about a latent family.

  Attributes:
    name: the identifier used by ``--latent=<name>``.
    cls: the distribution class.
    rsample: ``(key, dist, sample_shape) -> z``.
    log_prob: ``(dist, z) -> log q(z)``, elementwise.
    mean: ``dist -> E[z]`` (``inf`` where infinite).
    variance: ``dist -> Var[z]`` (``inf`` where infinite).
    rsample_log: ``(key, dist, sample_shape) -> log z`` for positive families, else None.
    log_prob_log: ``(dist, log_z) -> log q(z)`` at ``z = exp(log_z)``, for positive families.
    heads: default head name per parameter (see ``heads.py``); ``"identity"`` for a real one.
    standard_prior: ``shape -> dist``, the fixed prior used by ``--prior=standard``.
    mean_log: ``dist -> E[log z]`` for positive families (finite for every parameter value,
      unlike the mean of a heavy tail): the per-example statistic of active-unit counts.
    decode_log: whether ``decoder_input=auto`` feeds the decoder log z rather than z: for the
      power-law families (Pareto, Lomax, Generalized Pareto), whose draws span many decades.
    latent_fixed: parameters a latent of this family keeps fixed rather than predicting (e.g.
      ``{"loc": 0.0}`` for a Generalized Pareto latent on (0, inf)); the trainer passes them to
      the encoder head, the learned prior and the standard prior alike.
  """

  name: str
  cls: type
  rsample: Callable[..., Array]
  log_prob: Callable[..., Array]
  mean: Callable[..., Array]
  variance: Callable[..., Array]
  heads: Mapping[str, str]
  standard_prior: Callable[[Shape], Any]
  rsample_log: Callable[..., Array] | None = None
  log_prob_log: Callable[..., Array] | None = None
  mean_log: Callable[..., Array] | None = None
  latent_fixed: Mapping[str, float] = dataclasses.field(default_factory=dict)
  decode_log: bool = False

  @property
  def param_names(self) -> tuple[str, ...]:
    return self.cls.param_names


_FAMILIES_BY_TYPE: dict[type, FamilyInfo] = {}
_FAMILIES_BY_NAME: dict[str, FamilyInfo] = {}
_KL_REGISTRY: dict[tuple[type, type], Callable[[Any, Any], Array]] = {}


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
          raise ValueError(
              f"{cls_name}: parameter '{name}' must be > 0 everywhere; got "
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


def register_family(info: FamilyInfo) -> FamilyInfo:
  """Makes a family known to the dispatching functions and to ``--latent``."""
  if info.name in _FAMILIES_BY_NAME and _FAMILIES_BY_NAME[info.name].cls is not info.cls:
    raise ValueError(f"A different latent family is already registered as '{info.name}'.")
  _FAMILIES_BY_TYPE[info.cls] = info
  _FAMILIES_BY_NAME[info.name] = info
  return info


def register_kl(q_type: type, p_type: type):
  """Decorator registering ``fn(q, p) -> KL(q || p)`` (elementwise) for a pair of types."""

  def wrap(fn):
    _KL_REGISTRY[(q_type, p_type)] = fn
    return fn

  return wrap


def family_info(dist_or_name: Any) -> FamilyInfo:
  """The ``FamilyInfo`` of a distribution, a distribution class or a registered name."""
  if isinstance(dist_or_name, str):
    try:
      return _FAMILIES_BY_NAME[dist_or_name]
    except KeyError:
      raise ValueError(
          f"Unknown latent family '{dist_or_name}'; valid choices: {', '.join(family_names())}."
      ) from None
  cls = dist_or_name if isinstance(dist_or_name, type) else type(dist_or_name)
  try:
    return _FAMILIES_BY_TYPE[cls]
  except KeyError:
    raise TypeError(
        f"{cls.__name__} is not a registered latent family; registered: "
        f"{', '.join(i.cls.__name__ for i in _FAMILIES_BY_TYPE.values())}.") from None


def family_names() -> tuple[str, ...]:
  """Names of every registered family, in registration order."""
  return tuple(_FAMILIES_BY_NAME)


def _sample_shape(sample_shape: int | Shape) -> tuple[int, ...]:
  return (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)


def rsample(key: Array, dist: Distribution, sample_shape: int | Shape = ()) -> Array:
  """Draws a reparameterized sample: gradients flow to every parameter of ``dist``.

  Args:
    key: a JAX PRNG key.
    dist: any registered distribution.
    sample_shape: leading shape of independent draws.

  Returns:
    An array of shape ``sample_shape + dist.batch_shape``.
  """
  return family_info(dist).rsample(key, dist, _sample_shape(sample_shape))


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
  """Elementwise log-density ``log q(z)`` (``-inf`` outside the support)."""
  return family_info(dist).log_prob(dist, jnp.asarray(z))


def log_prob_log(dist: Distribution, log_z: ArrayLike) -> Array:
  """Elementwise ``log q(z)`` at ``z = exp(log_z)`` for positive families, without forming ``z``.

  This is the density of ``z`` (not of ``log z``); add ``log_z`` to get the density of ``log z``.
  """
  info = family_info(dist)
  if info.log_prob_log is None:
    raise TypeError(f"log_prob_log needs a positive family; {type(dist).__name__} has real support.")
  return info.log_prob_log(dist, jnp.asarray(log_z))


def mean(dist: Distribution) -> Array:
  """Elementwise mean; ``inf`` where it is infinite (e.g. a Pareto with ``alpha <= 1``)."""
  return family_info(dist).mean(dist)


def mean_log(dist: Distribution) -> Array:
  """Elementwise ``E[log z]`` of a positive family; finite wherever the parameters are valid."""
  info = family_info(dist)
  if info.mean_log is None:
    raise ValueError(f"mean_log needs a positive family with a closed form; '{info.name}' has "
                     "none (use mean() for a real-valued family).")
  return info.mean_log(dist)


def variance(dist: Distribution) -> Array:
  """Elementwise variance; ``inf`` where it is infinite (e.g. a Pareto with ``alpha <= 2``)."""
  return family_info(dist).variance(dist)


def kl(q: Distribution, p: Distribution) -> Array:
  """Closed-form ``KL(q || p)``, elementwise over the broadcast batch shape.

  Raises:
    KLNotImplementedError: no closed form is registered for ``(type(q), type(p))``.
  """
  try:
    fn = _KL_REGISTRY[(type(q), type(p))]
  except KeyError:
    raise KLNotImplementedError(
        f"No closed-form KL is registered for KL({type(q).__name__} || {type(p).__name__}). "
        f"Registered pairs: {', '.join(f'({a.__name__}, {b.__name__})' for a, b in _KL_REGISTRY)}. "
        "Estimate it by Monte Carlo from rsample and log_prob instead.") from None
  return fn(q, p)


def has_closed_form_kl(q_type: type, p_type: type) -> bool:
  return (q_type, p_type) in _KL_REGISTRY
