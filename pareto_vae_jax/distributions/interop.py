"""Conversions to and from TensorFlow Probability's JAX substrate: ``to_tfp`` and ``from_tfp``.

Each family maps to the TFP class with the same density (``_PAIRS`` below, in TFP's parameter
names; the README's "Coming from TFP, numpyro or torch" adds numpyro's and torch's). A ``Mixture``
maps to ``MixtureSameFamily(Categorical(logits), Independent(components, 1))``.

TFP has no Lomax; the Generalized Pareto with location 0 is one (the density (alpha / lam)
(1 + z / lam)^-(alpha + 1) is the GPD's (1 / sigma) (1 + xi z / sigma)^-(1 / xi + 1) at
xi = 1 / alpha, sigma = lam / alpha), so ``from_tfp`` returns a ``GeneralizedPareto`` for it
unless asked for a ``Lomax``. ``SymmetricPareto``, ``PlanarFlow`` and ``IAF`` have no TFP
equivalent and are refused. ``tests/test_interop.py`` checks every density against TFP's.

TFP is not a dependency of this package: it is imported on the first call. Its newest release,
0.25.0, fails to import with jax >= 0.7: it registers a type in
``jax.interpreters.xla.pytype_aval_mappings``, which jax 0.7 removed (tensorflow/probability#2009).
Since jax 0.5 that name was an alias of the dict ``jax.core.pytype_aval_mappings``
(tensorflow/probability#1994), so importing this module puts the alias back where it is missing:
TFP then imports, here and in the user's own code, with no other change.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.interpreters import xla

from pareto_vae_jax.distributions import base
from pareto_vae_jax.distributions.full_cov_gaussian import FullCovGaussian
from pareto_vae_jax.distributions.gaussian import Gaussian
from pareto_vae_jax.distributions.generalized_pareto import GeneralizedPareto
from pareto_vae_jax.distributions.iaf import IAF
from pareto_vae_jax.distributions.inverse_gaussian import InverseGaussian
from pareto_vae_jax.distributions.lognormal import LogNormal
from pareto_vae_jax.distributions.lomax import Lomax
from pareto_vae_jax.distributions.mixture import Mixture
from pareto_vae_jax.distributions.multivariate_symmetric_pareto import MultivariateSymmetricPareto
from pareto_vae_jax.distributions.multivariate_t import MultivariateT
from pareto_vae_jax.distributions.pareto import Pareto
from pareto_vae_jax.distributions.planar import PlanarFlow
from pareto_vae_jax.distributions.student_t import StudentT
from pareto_vae_jax.distributions.symmetric_pareto import SymmetricPareto
from pareto_vae_jax.distributions.weibull import Weibull

Array = jax.Array


def _restore_alias_tfp_reads() -> None:
  """Puts back ``jax.interpreters.xla.pytype_aval_mappings`` (the module docstring)."""
  # jax.core's name is deprecated too; its warning (and TFP's own, on import) asks for a change
  # that only TFP can make.
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    mappings = getattr(jax.core, "pytype_aval_mappings", None)
  if mappings is not None and not hasattr(xla, "pytype_aval_mappings"):
    xla.pytype_aval_mappings = mappings


_restore_alias_tfp_reads()


def _tfd():
  """``tensorflow_probability.substrates.jax.distributions``, imported on first use."""
  try:
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", DeprecationWarning)
      from tensorflow_probability.substrates import jax as tfp
  except ModuleNotFoundError as e:
    raise ImportError(
        f"to_tfp and from_tfp need TensorFlow Probability, which is not installed ({e}). "
        "Install it with `pip install tensorflow-probability` (0.25 or later; its JAX "
        "substrate needs no TensorFlow).") from e
  return tfp.distributions


@dataclasses.dataclass(frozen=True)
class _Pair:
  """One family and its TFP equivalent (``tfp_name``, a class of ``tfd``), both directions."""

  cls: type
  tfp_name: str
  to_tfp: Callable[[Any, Any], Any]  # (tfd, dist) -> TFP distribution
  from_tfp: Callable[[Any], Any]  # TFP distribution -> dist


def _check(ok: Array, message: str) -> None:
  # Concrete values only: under jit the parameters cannot be inspected.
  if base._is_concrete(ok) and not np.all(np.asarray(ok)):
    raise ValueError(message)


def _lomax_from_gpd(gpd) -> Lomax:
  _check(
      jnp.asarray(gpd.loc) == 0,
      f"from_tfp: a GeneralizedPareto is a Lomax only where loc = 0; got loc {gpd.loc}. "
      "Leave out family= to get a pareto_vae_jax.GeneralizedPareto.")
  _check(
      jnp.asarray(gpd.concentration) > 0,
      "from_tfp: a GeneralizedPareto is a Lomax only where concentration > 0; got "
      f"{gpd.concentration}. Leave out family= to get a pareto_vae_jax.GeneralizedPareto.")
  return Lomax(1 / gpd.concentration, gpd.scale / gpd.concentration)


# The first pair naming a TFP class is what from_tfp returns for it by default.
_PAIRS = (
    _Pair(Gaussian, "Normal", lambda tfd, d: tfd.Normal(loc=d.loc, scale=d.scale),
          lambda t: Gaussian(t.loc, t.scale)),
    _Pair(LogNormal, "LogNormal", lambda tfd, d: tfd.LogNormal(loc=d.loc, scale=d.scale),
          lambda t: LogNormal(t.loc, t.scale)),
    _Pair(Pareto, "Pareto", lambda tfd, d: tfd.Pareto(concentration=d.alpha, scale=d.scale),
          lambda t: Pareto(t.concentration, t.scale)),
    _Pair(InverseGaussian, "InverseGaussian",
          lambda tfd, d: tfd.InverseGaussian(loc=d.mean, concentration=d.shape),
          lambda t: InverseGaussian(t.loc, t.concentration)),
    _Pair(GeneralizedPareto, "GeneralizedPareto",
          lambda tfd, d: tfd.GeneralizedPareto(loc=d.loc, scale=d.scale, concentration=d.shape),
          lambda t: GeneralizedPareto(t.scale, t.concentration, t.loc)),
    _Pair(
        Lomax,
        "GeneralizedPareto",
        # The module docstring: xi = 1 / alpha, sigma = lam / alpha.
        lambda tfd, d: tfd.GeneralizedPareto(
            loc=jnp.zeros_like(d.scale), scale=d.scale / d.alpha, concentration=1 / d.alpha),
        _lomax_from_gpd),
    _Pair(StudentT, "StudentT", lambda tfd, d: tfd.StudentT(df=d.df, loc=d.loc, scale=d.scale),
          lambda t: StudentT(t.df, t.loc, t.scale)),
    _Pair(Weibull, "Weibull",
          lambda tfd, d: tfd.Weibull(concentration=d.concentration, scale=d.scale),
          lambda t: Weibull(t.concentration, t.scale)),
    _Pair(
        FullCovGaussian,
        "MultivariateNormalTriL",
        lambda tfd, d: tfd.MultivariateNormalTriL(loc=d.loc, scale_tril=d.scale_tril),
        # mean() rather than loc, which TFP allows to be None (a zero mean).
        lambda t: FullCovGaussian(t.mean(), t.scale.to_dense())),
)
_TO_TFP = {p.cls: p for p in _PAIRS}

_NO_EQUIVALENT = {
    SymmetricPareto:
        "TFP has no two-sided Pareto (a Lomax reflected about loc)",
    PlanarFlow:
        "TFP has no planar-flow bijector",
    MultivariateT: ("TFP's MultivariateStudentTLinearOperator has the same density, but to_tfp "
                    "does not build it (its scale is a linear operator; a diagonal one would do)"),
    MultivariateSymmetricPareto:
        "TFP has no multivariate symmetric Pareto",
    IAF: ("TFP has no IAF distribution; the gated step z <- sigma z + (1 - sigma) m is an affine "
          "autoregressive one, so tfb.Invert(tfb.MaskedAutoregressiveFlow(...)) around this "
          "package's MADE (iaf.made_apply) could be written by hand, but to_tfp does not"),
}


def to_tfp(dist: Any):
  """The TensorFlow Probability (JAX substrate) distribution with the same density as ``dist``.

  The result holds ``dist``'s parameter arrays (no copy), so it may be built under ``jit`` and
  differentiated through. A factorized family maps to a TFP distribution with the same batch
  shape and a scalar event; ``FullCovGaussian`` and ``Mixture`` to one with event shape ``[D]``.

  Args:
    dist: a distribution of this package with a TFP equivalent (the module docstring).

  Returns:
    A ``tfp.substrates.jax.distributions.Distribution``.

  Raises:
    ImportError: TensorFlow Probability is not installed.
    TypeError: ``dist`` has no TFP equivalent (``SymmetricPareto``, the flows, a mixture of
      such components) or is not a distribution of this package.

  Example:
    >>> import pareto_vae_jax as pvj
    >>> pvj.to_tfp(pvj.Pareto(2.0, 3.0)).concentration
    Array(2., dtype=float32)
  """
  tfd = _tfd()
  if isinstance(dist, Mixture):
    return tfd.MixtureSameFamily(
        tfd.Categorical(logits=dist.logits),
        tfd.Independent(to_tfp(dist.components), reinterpreted_batch_ndims=1))
  pair = _TO_TFP.get(type(dist))
  if pair is None:
    name = type(dist).__name__
    if type(dist) in _NO_EQUIVALENT:
      raise TypeError(f"to_tfp: {name} has no TFP equivalent: {_NO_EQUIVALENT[type(dist)]}. "
                      f"Families with one: {_names(_TO_TFP)}, Mixture of those.")
    raise TypeError(f"to_tfp takes a pareto_vae_jax distribution ({_names(_TO_TFP)}, "
                    f"Mixture); got {name}.")
  return pair.to_tfp(tfd, dist)


def from_tfp(tfp_dist: Any, *, family: type | None = None):
  """The distribution of this package with the same density as a TFP (JAX substrate) one.

  Args:
    tfp_dist: a ``tfp.substrates.jax.distributions`` ``Normal``, ``LogNormal``, ``Pareto``,
      ``InverseGaussian``, ``GeneralizedPareto``, ``StudentT``, ``Weibull``,
      ``MultivariateNormalTriL``, or a ``MixtureSameFamily`` of a ``Categorical`` and an
      ``Independent`` (one reinterpreted axis) of one of the factorized ones.
    family: the class to return where more than one fits: ``Lomax`` for a ``GeneralizedPareto``
      with ``loc = 0`` and ``concentration > 0`` (the default is ``GeneralizedPareto``). For a
      ``MixtureSameFamily`` it applies to the components.

  Returns:
    A distribution of this package. ``from_tfp(to_tfp(d), family=type(d))`` has ``d``'s
    parameters (for a mixture, ``family=type(d.components)``).

  Raises:
    ImportError: TensorFlow Probability is not installed.
    TypeError: ``tfp_dist`` has no equivalent here, or ``family`` cannot express it.
    ValueError: ``family`` cannot express these parameter values (checked where concrete).
  """
  tfd = _tfd()
  if isinstance(tfp_dist, tfd.MixtureSameFamily):
    return _mixture_from_tfp(tfd, tfp_dist, family)
  name = type(tfp_dist).__name__
  candidates = [p for p in _PAIRS if getattr(tfd, p.tfp_name) is type(tfp_dist)]
  if not candidates:
    supported = ", ".join(dict.fromkeys(p.tfp_name for p in _PAIRS))
    raise TypeError(
        f"from_tfp: no pareto_vae_jax family for {type(tfp_dist).__module__}.{name}. Supported "
        f"(from tensorflow_probability.substrates.jax.distributions): {supported}, "
        "MixtureSameFamily of those.")
  pair = candidates[0] if family is None else next((p for p in candidates if p.cls is family), None)
  if pair is None:
    raise TypeError(f"from_tfp: a TFP {name} cannot be converted to family="
                    f"{getattr(family, '__name__', family)}; it converts to "
                    f"{_names(p.cls for p in candidates)}.")
  return pair.from_tfp(tfp_dist)


def _mixture_from_tfp(tfd, tfp_dist, family: type | None) -> Mixture:
  mixing, components = tfp_dist.mixture_distribution, tfp_dist.components_distribution
  if not (isinstance(mixing, tfd.Categorical) and isinstance(components, tfd.Independent) and
          components.reinterpreted_batch_ndims == 1):
    raise TypeError("from_tfp: a MixtureSameFamily converts to a pareto_vae_jax Mixture only as "
                    "MixtureSameFamily(Categorical(...), Independent(<factorized family>, 1)); got "
                    f"{type(mixing).__name__} mixing {components!r}.")
  inner = from_tfp(components.distribution, family=family)
  if not isinstance(inner, base.Distribution):
    raise TypeError(f"from_tfp: a Mixture's components must be a factorized family; got "
                    f"{type(inner).__name__}.")
  return Mixture(mixing.logits_parameter(), inner)


def _names(classes) -> str:
  return ", ".join(cls.__name__ for cls in classes)
