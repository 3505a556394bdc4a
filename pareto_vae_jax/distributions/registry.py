"""The one registry of latent families and the one table of closed-form KLs.

Each family registers a ``FamilyInfo`` at the bottom of its own file. Its ``event_ndim`` is the
one difference the rest of the library reads:

* 0, factorized: the family's functions act elementwise and a latent vector's density is the
  product over its dimensions (Pareto, Gaussian, ...). The encoder predicts its parameters
  per dimension through ``heads``.
* 1, joint over the last axis: the density is one number per vector (the full-covariance
  Gaussian, the flows, and a mixture prior). A joint latent family is drawn by ``transform``
  from standard-normal noise, with the draw's log-density, from ``num_raw`` encoder outputs
  per example (``from_flat``).

The KL table holds every closed form ``KL(q || p)`` by ``(type(q), type(p))``, of either kind:
per dimension when both are factorized, one per vector otherwise. ``latent.py`` builds the
trainer's draws, densities and KL terms on this registry; ``joint.py`` keeps the former joint
registry's functions as views of it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import jax

Array = jax.Array
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
    log_prob: ``(dist, z) -> log q(z)``: elementwise (``event_ndim`` 0) or per vector (1);
      None where the density is known only at the family's own draws (the flows).
    mean: ``dist -> E[z]`` (``inf`` where infinite); None where there is no closed form.
    variance: ``dist -> Var[z]`` per dimension (``inf`` where infinite).
    heads: default head name per parameter (see ``heads.py``); ``"identity"`` for a real one.
      Factorized families only.
    standard_prior: ``shape -> dist``, the fixed prior used by ``--prior=standard`` (a joint
      family's: ``(shape, options) -> dist``, its degrees of freedom from the options).
      Factorized families only.
    rsample_log: ``(key, dist, sample_shape) -> log z`` for positive families, else None.
    log_prob_log: ``(dist, log_z) -> log q(z)`` at ``z = exp(log_z)``, for positive families.
    mean_log: ``dist -> E[log z]`` for positive families (finite for every parameter value,
      unlike the mean of a heavy tail): the per-example statistic of active-unit counts.
    latent_fixed: parameters a latent of this family keeps fixed rather than predicting (e.g.
      ``{"loc": 0.0}`` for a Generalized Pareto latent on (0, inf)); the trainer passes them to
      the encoder head, the learned prior and the standard prior alike.
    decode_log: whether ``decoder_input=auto`` feeds the decoder log z rather than z: for the
      power-law families (Pareto, Lomax, Generalized Pareto), whose draws span many decades.
    event_ndim: 0 for a factorized family, 1 for a density joint over the last axis.
    transform: ``(dist, eps) -> (z, log q(z))``, a reparameterized draw from standard-normal
      noise ``eps`` of shape ``[..., D]`` with its log-density (joint latent families).
    num_raw: ``(latent_dim, options) -> int``, the encoder outputs one posterior takes
      (joint latent families; ``options`` are the trainer's ``flow_layers``, ``iaf_steps``,
      ``iaf_hidden``, ``iaf_context``).
    from_flat: ``(raw, latent_dim, options, shared) -> dist`` (joint latent families).
    init_shared: ``(key, latent_dim, options) -> pytree`` of parameters shared by all examples
      (the IAF's MADE weights, learned with the networks), or None.
    description: one line for the README's family table.
    prior_only: a prior's distribution that is no ``--latent`` choice (a mixture).
    log_space: ``dist -> bool``, whether an instance is drawn and scored in log space, where
      that depends on the instance (a mixture: on its components); by default, whether the
      family has ``rsample_log``.
  """

  name: str
  cls: type
  rsample: Callable[..., Array] | None = None
  log_prob: Callable[..., Array] | None = None
  mean: Callable[..., Array] | None = None
  variance: Callable[..., Array] | None = None
  heads: Mapping[str, str] = dataclasses.field(default_factory=dict)
  standard_prior: Callable[[Shape], Any] | None = None
  rsample_log: Callable[..., Array] | None = None
  log_prob_log: Callable[..., Array] | None = None
  mean_log: Callable[..., Array] | None = None
  latent_fixed: Mapping[str, float] = dataclasses.field(default_factory=dict)
  decode_log: bool = False
  event_ndim: int = 0
  transform: Callable[[Any, Array], tuple[Array, Array]] | None = None
  num_raw: Callable[[int, Mapping[str, int]], int] | None = None
  from_flat: Callable[..., Any] | None = None
  init_shared: Callable[..., Any] | None = None
  description: str = ""
  prior_only: bool = False
  log_space: Callable[[Any], bool] | None = None

  @property
  def param_names(self) -> tuple[str, ...]:
    return getattr(self.cls, "param_names", ())

  @property
  def is_joint_latent(self) -> bool:
    """A ``--latent`` choice whose density is joint over the dimensions."""
    return self.event_ndim == 1 and not self.prior_only


# The fields a family of each kind cannot do without.
_REQUIRED = {
    "factorized": ("rsample", "log_prob", "mean", "variance", "heads", "standard_prior"),
    "joint": ("transform", "num_raw", "from_flat"),
    "prior_only": ("rsample", "log_prob"),
}

_BY_NAME: dict[str, FamilyInfo] = {}
_BY_TYPE: dict[type, FamilyInfo] = {}
_KL: dict[tuple[type, type], Callable[[Any, Any], Array]] = {}


def register_family(info: FamilyInfo) -> FamilyInfo:
  """Makes a family known to the dispatching functions and, unless ``prior_only``, to
  ``--latent``. Each family calls it at the bottom of its own file."""
  if info.name in _BY_NAME and _BY_NAME[info.name].cls is not info.cls:
    raise ValueError(f"A different latent family is already registered as '{info.name}'.")
  if info.event_ndim not in (0, 1):
    raise ValueError(f"Family '{info.name}': event_ndim must be 0 (factorized) or 1 (joint over "
                     f"the last axis); got {info.event_ndim}.")
  kind = ("prior_only" if info.prior_only else "factorized" if info.event_ndim == 0 else "joint")
  missing = [f for f in _REQUIRED[kind] if not getattr(info, f)]
  if missing:
    raise ValueError(f"Family '{info.name}' ({kind}) needs {', '.join(missing)} in its "
                     "FamilyInfo.")
  _BY_TYPE[info.cls] = info
  _BY_NAME[info.name] = info
  return info


def register_kl(q_type: type, p_type: type):
  """Decorator registering ``fn(q, p) -> KL(q || p)`` for a pair of types.

  The result has the broadcast batch shape of ``q`` and ``p``: elementwise when both are
  factorized, one value per vector when either is joint.
  """

  def wrap(fn):
    _KL[(q_type, p_type)] = fn
    return fn

  return wrap


def family_info(dist_or_name: Any) -> FamilyInfo:
  """The ``FamilyInfo`` of a distribution, a distribution class or a registered name."""
  if isinstance(dist_or_name, str):
    try:
      return _BY_NAME[dist_or_name]
    except KeyError:
      raise ValueError(
          f"Unknown latent family '{dist_or_name}'; valid choices: {', '.join(latent_names())}."
      ) from None
  cls = dist_or_name if isinstance(dist_or_name, type) else type(dist_or_name)
  try:
    return _BY_TYPE[cls]
  except KeyError:
    raise TypeError(f"{cls.__name__} is not a registered latent family; registered: "
                    f"{', '.join(i.cls.__name__ for i in _BY_TYPE.values())}.") from None


def is_registered(dist_or_type: Any) -> bool:
  """Whether ``dist_or_type`` (an instance or a class) is of a registered family."""
  return (dist_or_type if isinstance(dist_or_type, type) else type(dist_or_type)) in _BY_TYPE


def event_ndim(dist_or_type: Any) -> int:
  """0 if the family of ``dist_or_type`` is factorized, 1 if its density is joint."""
  return family_info(dist_or_type).event_ndim


def registered() -> tuple[FamilyInfo, ...]:
  """Every registered family, prior-only ones included, in registration order."""
  return tuple(_BY_NAME.values())


def family_names() -> tuple[str, ...]:
  """Names of the factorized families (``event_ndim`` 0), in registration order.

  A view of the one registry; ``joint.joint_family_names`` is the other.
  """
  return tuple(i.name for i in registered() if i.event_ndim == 0)


def latent_names() -> tuple[str, ...]:
  """Every name ``--latent`` accepts: the factorized families, then the joint ones.

  A view of the one registry.
  """
  return (*family_names(), *(i.name for i in registered() if i.is_joint_latent))


def has_closed_form_kl(q_type: type, p_type: type) -> bool:
  """Whether the KL table has a closed form for ``(q_type, p_type)``, of either kind."""
  return (q_type, p_type) in _KL


def kl(q: Any, p: Any) -> Array:
  """Closed-form ``KL(q || p)`` over the broadcast batch shape of ``q`` and ``p``.

  Elementwise when both are factorized; one value per vector when either is joint.

  Raises:
    KLNotImplementedError: no closed form is registered for ``(type(q), type(p))``.
  """
  try:
    fn = _KL[(type(q), type(p))]
  except KeyError:
    raise KLNotImplementedError(
        f"No closed-form KL is registered for KL({type(q).__name__} || {type(p).__name__}). "
        f"Registered pairs: {', '.join(f'({a.__name__}, {b.__name__})' for a, b in _KL)}. "
        "Estimate it by Monte Carlo from rsample and log_prob instead.") from None
  return fn(q, p)
