"""Multivariate Student-t latent with a diagonal scale, joint over the last axis (t3VAE).

``MultivariateT(loc [..., D], scale [..., D], df [...])`` is the ``D``-variate t with location
``mu = loc``, shape matrix ``Sigma = diag(scale^2)`` and ``nu = df`` degrees of freedom:

    t_D(z | mu, Sigma, nu) = Gamma((nu + D) / 2) / (Gamma(nu / 2) (nu pi)^(D/2) prod_i scale_i)
                             * (1 + |u|^2 / nu)^(-(nu + D) / 2),    u = (z - mu) / scale,

(the standard multivariate t with shape matrix ``Sigma``; t3VAE, Kim et al., ICLR 2024, arXiv
2312.01133, section 3, uses it for the prior ``t_m(z | 0, I, nu)`` and for the encoder, whose
shape matrix is diagonal, predicted per dimension, as here. Only the paper's abstract was
reachable from this workplace, so the exact forms are read from its reference implementation,
github.com/Mincheol2/t3VAE ``synthetic_data_analyses/models/t3VAE.py``: ``encoder_reparameterize``
draws ``z = mu + sqrt(nu / (nu + n)) exp(logvar / 2) eps sqrt((nu + n) / v)``, ``v ~
chi2(nu + n)`` (so the encoder is ``t_m(mu, nu / (nu + n) diag(exp(logvar)), nu + n)``, n the
data dimension), ``generate`` draws the prior as ``eps sqrt(nu / v)``, ``v ~ chi2(nu)``, and
``loss.log_t_normalizing_const(nu, d)`` is the constant above. Here the posterior and the prior
share one ``df``.) The density is joint (``event_ndim = 1``): the coordinates are uncorrelated but
not independent. Each coordinate is a univariate ``t_nu(loc_i, scale_i)``, and
``|u|^2 / D ~ F(D, nu)`` (the radial part).

Draws: the Gaussian scale mixture ``z = loc + scale * eps / sqrt(W / nu)``, ``eps ~ N(0, I_D)``,
``W ~ chi2(nu) = 2 Gamma(nu / 2, 1)``, one ``W`` per vector. ``W`` is drawn as ``log g``, ``g ~
Gamma(nu / 2)``, by ``jax.random.loggamma``, whose implicit reparameterization (Figurnov et al.,
2018) gives ``df`` a pathwise gradient like ``loc`` and ``scale`` (as ``student_t.rsample``).

Moments: ``E[z] = loc`` for ``nu > 1`` (``inf`` otherwise, ``student_t``'s convention);
``Cov[z] = diag(scale^2) nu / (nu - 2)`` for ``nu > 2`` (``inf`` for ``1 < nu <= 2``, ``nan`` for
``nu <= 1``).

As a ``--latent``: the encoder predicts ``loc`` (identity) and ``scale`` (``softplus + 1e-4``)
per dimension, ``num_raw(D) = 2 D`` laid out ``[loc | raw scale]``; ``df`` is not predicted. It
is ``options["multivariate_t_df"]`` when the trainer's joint options carry it, else
``DEFAULT_DF = 5`` (``student_t``'s standard-prior df: finite variance 5/3, kurtosis 9). The
trainer passes ``config.latent_df`` there (``vae.DF_OPTIONS``).

The joint-family contract draws from ``D`` standard normals only (``latent.sample_and_log_prob``
calls ``transform(dist, eps)``), but a t draw needs one more random number, ``W``. ``transform``
therefore derives ``W``'s key from the bits of ``eps`` (a threefry ``fold_in`` of each of its
``D`` float32 bit patterns): ``W`` is a deterministic function of ``eps`` that is, to the quality
of the PRNG hash, independent of it, so ``z`` has the t distribution and ``log q(z)`` is its exact
density. ``rsample`` and ``rsample_and_log_prob`` take a key and split it instead.

Prior and KL: ``--prior=standard`` is the family's own ``t_D(0, I, df)`` (``standard_prior``,
t3VAE's prior; ``models.VAE.prior_dist`` reads it from the registry with the same df).
``KL(t || t)`` has no closed form (it needs ``E_q log(1 + |u_p|^2 / nu_p)``), so the ELBO uses
the single-draw estimate ``log q(z) - log p(z)`` (``latent.kl_method`` = ``estimate_joint``);
``--objective=gamma_power`` replaces it by t3VAE's closed-form regularizer (``gamma_power``).
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax.distributions import base, heads, registry

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

DEFAULT_DF = 5.0
# The options key that would carry a configured df (see the module docstring).
DF_OPTION = "multivariate_t_df"


class LocScaleDf:
  """An immutable pytree ``(loc [..., D], scale [..., D], df [...])`` over the last axis.

  ``loc`` and ``scale`` are broadcast to a common ``batch + [D]``, ``df`` to ``batch``. With
  concrete values the constructor checks ``scale > 0`` and ``df > 0`` (``ValueError``
  otherwise); under a transformation it cannot, and unflattening bypasses the checks.
  """

  event_ndim = 1
  param_names = ("loc", "scale", "df")

  def __init__(self, loc: ArrayLike, scale: ArrayLike, df: ArrayLike = DEFAULT_DF):
    name = type(self).__name__
    dtype = jnp.result_type(loc, scale, df, float)
    loc, scale, df = (jnp.asarray(v, dtype) for v in (loc, scale, df))
    if loc.ndim < 1 or scale.ndim < 1:
      raise ValueError(f"{name}: loc and scale need shape [..., D]; got {loc.shape} and "
                       f"{scale.shape}.")
    try:
      shape = jnp.broadcast_shapes(loc.shape, scale.shape)
      batch = jnp.broadcast_shapes(shape[:-1], df.shape)
    except ValueError:
      raise ValueError(f"{name}: loc {loc.shape}, scale {scale.shape} and df {df.shape} do not "
                       "broadcast (df has the batch shape, without the last axis D).") from None
    shape = batch + shape[-1:]
    loc, scale, df = (jnp.broadcast_to(loc,
                                       shape), jnp.broadcast_to(scale,
                                                                shape), jnp.broadcast_to(df, batch))
    for pname, value in (("scale", scale), ("df", df)):
      if base._is_concrete(value):
        bad = ~(np.asarray(value) > 0)
        if bad.any():
          raise ValueError(f"{name}: parameter '{pname}' must be > 0 everywhere; got "
                           f"{np.asarray(value)[bad].ravel()[:3]} at {int(bad.sum())} "
                           "position(s). Build it with from_flat from unconstrained outputs.")
    object.__setattr__(self, "loc", loc)
    object.__setattr__(self, "scale", scale)
    object.__setattr__(self, "df", df)

  def __setattr__(self, name, value):
    raise AttributeError(f"{type(self).__name__} is immutable; build a new one.")

  def tree_flatten(self):
    return (self.loc, self.scale, self.df), None

  @classmethod
  def tree_unflatten(cls, _, children):
    obj = object.__new__(cls)
    for name, value in zip(cls.param_names, children):
      object.__setattr__(obj, name, value)
    return obj

  @property
  def params(self) -> tuple[Array, Array, Array]:
    return (self.loc, self.scale, self.df)

  @property
  def batch_shape(self) -> tuple[int, ...]:
    return tuple(self.loc.shape[:-1])

  @property
  def event_shape(self) -> tuple[int, ...]:
    return tuple(self.loc.shape[-1:])

  @property
  def dtype(self):
    return self.loc.dtype

  def __repr__(self) -> str:
    return (f"{type(self).__name__}(batch {self.batch_shape}, event {self.event_shape}, "
            f"{self.dtype})")


@jax.tree_util.register_pytree_node_class
class MultivariateT(LocScaleDf):
  """Multivariate t ``t_D(loc, diag(scale^2), df)`` over the last axis.

  Args:
    loc: location (the mean for df > 1), shape ``[..., D]``.
    scale: per-dimension scale, > 0, shape ``[..., D]``.
    df: degrees of freedom nu > 0, shape ``[...]`` or scalar (default 5).
  """


# ------------------------------------------------------------------------------------------------
# Shared by the scale-mixture families (this one and multivariate_symmetric_pareto).


def batch_of(dist: LocScaleDf, eps: Array) -> tuple[tuple[int, ...], Array, Array]:
  """(S, eps broadcast to ``S + [D]``, df broadcast to ``S``): S the broadcast batch shape."""
  s = jnp.broadcast_shapes(eps.shape[:-1], dist.batch_shape)
  return s, jnp.broadcast_to(eps, s + eps.shape[-1:]), jnp.broadcast_to(dist.df, s)


def _key_of_bits(bits: Array) -> Array:
  # A threefry key from one row of D uint32 bit patterns: fold_in of each in turn.
  key, _ = jax.lax.scan(lambda k, b: (jax.random.fold_in(k, b), None), jax.random.key(0x5EED), bits)
  return key


def loggamma_from_noise(eps: Array, shape_param: Array) -> Array:
  """``log g``, ``g ~ Gamma(shape_param)``, keyed by a hash of each vector of ``eps``.

  Args:
    eps: ``S + [D]`` noise (its float32 bit patterns only are read; no gradient flows to it).
    shape_param: Gamma shapes, ``S``; the draw is differentiable in them (implicit
      reparameterization).

  Returns:
    ``S`` values of ``log g``. Equal rows of ``eps`` give equal draws; different rows give
    draws that are independent to the quality of the threefry hash.
  """
  s, d = eps.shape[:-1], eps.shape[-1]
  bits = jax.lax.bitcast_convert_type(jax.lax.stop_gradient(eps).astype(jnp.float32), jnp.uint32)
  keys = jax.vmap(_key_of_bits)(bits.reshape(-1, d))
  a = jnp.broadcast_to(shape_param, s).reshape(-1)
  out = jax.vmap(lambda k, x: jax.random.loggamma(k, x, (), shape_param.dtype))(keys, a)
  return out.reshape(s)


def noise(key: Array, dist: LocScaleDf,
          sample_shape: int | base.Shape) -> tuple[Array, Array, Array]:
  """(eps ``S + [D]`` standard normal, log g ``S`` with ``g ~ Gamma(alpha)``, S) from ``key``,
  ``S = sample_shape + batch`` and ``alpha`` the family's mixing shape (``mixing_shape``)."""
  s = base._sample_shape(sample_shape) + dist.batch_shape
  key_eps, key_g = jax.random.split(key)
  eps = jax.random.normal(key_eps, s + dist.event_shape, dist.dtype)
  alpha = jnp.broadcast_to(mixing_shape(dist), s)
  return eps, jax.random.loggamma(key_g, alpha, s, dist.dtype), s


def mixing_shape(dist: LocScaleDf) -> Array:
  """The Gamma shape of the mixing variable: nu / 2 for the t, nu for the symmetric Pareto."""
  return 0.5 * dist.df if isinstance(dist, MultivariateT) else dist.df


def log1p_norm_ratio(log_norm: Array, log_df: Array) -> Array:
  """``log(1 + exp(log_norm - log_df))``, finite for any finite ``log_norm``."""
  return jnp.logaddexp(0.0, log_norm - log_df)


def log_norm(values: Array, power: int) -> Array:
  """``log sum_i |v_i|^power`` over the last axis, finite where the sum overflows float32.

  Rescaled by the largest ``|v_i|`` (safely: its gradient stays finite at ``v = 0``, where the
  result is ``-inf``).
  """
  a = jnp.abs(values)
  m = jnp.max(a, -1)
  pos = m > 0
  m_safe = jnp.where(pos, m, 1.0)
  r = jnp.where(pos[..., None], a, 1.0) / m_safe[..., None]
  out = power * jnp.log(m_safe) + jnp.log(jnp.sum(r**power, -1))
  return jnp.where(pos, out, -jnp.inf)


def moments(dist: LocScaleDf, factor: Array) -> tuple[Array, Array]:
  """(mean, variance) per dimension: ``loc`` for df > 1 else inf; ``scale^2 factor`` for df > 2,
  inf for 1 < df <= 2, nan for df <= 1 (``student_t``'s conventions)."""
  df = dist.df[..., None]
  mean = jnp.where(df > 1, dist.loc, jnp.inf)
  var = jnp.where(df > 2,
                  jnp.square(dist.scale) * factor[..., None], jnp.where(df > 1, jnp.inf, jnp.nan))
  return mean, var


def from_flat_of(cls: type, raw: ArrayLike, latent_dim: int, df: float) -> Any:
  """``cls(raw[..., :D], softplus(raw[..., D:]) + 1e-4, df)`` from ``2 D`` encoder outputs."""
  raw = jnp.asarray(raw)
  d = latent_dim
  if raw.ndim < 1 or raw.shape[-1] != 2 * d:
    raise ValueError(f"from_flat: a {cls.__name__} latent of dimension {d} needs 2 D = {2 * d} "
                     f"raw values on the last axis ([loc | raw scale]); got shape {raw.shape}.")
  return cls(raw[..., :d], heads.softplus_floor(raw[..., d:]),
             jnp.full(raw.shape[:-1], df, raw.dtype))


def num_raw(latent_dim: int) -> int:
  """``2 D``: loc and raw scale per dimension."""
  if not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
    raise ValueError(f"latent_dim must be a positive integer; got {latent_dim!r}.")
  return 2 * latent_dim


# ------------------------------------------------------------------------------------------------
# The multivariate t.


def log_normalizer(df: Array, d: int) -> Array:
  """``log Gamma((nu + D)/2) - log Gamma(nu/2) - D/2 log(nu pi)``."""
  gammaln = jax.scipy.special.gammaln
  return gammaln(0.5 * (df + d)) - gammaln(0.5 * df) - 0.5 * d * jnp.log(math.pi * df)


def _from_noise(dist: MultivariateT, eps: Array, log_g: Array) -> tuple[Array, Array]:
  # z = loc + scale eps sqrt(nu / W), W = 2 g: sqrt(nu / W) = exp((log(nu/2) - log g) / 2).
  # log q from the noise: |u|^2 / nu = |eps|^2 / W, so no subtraction of loc.
  d = eps.shape[-1]
  df = jnp.broadcast_to(dist.df, log_g.shape)
  z = dist.loc + dist.scale * eps * jnp.exp(0.5 * (jnp.log(0.5 * df) - log_g))[..., None]
  kernel = log1p_norm_ratio(log_norm(eps, 2) - log_g, jnp.log(2.0))
  log_q = (log_normalizer(df, d) - jnp.sum(jnp.log(dist.scale), -1) - 0.5 * (df + d) * kernel)
  return z, log_q


def transform(dist: MultivariateT, eps: ArrayLike) -> tuple[Array, Array]:
  """A draw and its log-density from standard-normal ``eps`` ``[..., D]`` alone.

  ``W``'s key is a hash of ``eps`` (module docstring), so the same ``eps`` gives the same draw.

  Returns:
    ``(z, log_q)`` of shapes ``S + [D]`` and ``S``, S the broadcast batch shape.
  """
  eps = jnp.asarray(eps, dist.dtype)
  _, eps, df = batch_of(dist, eps)
  return _from_noise(dist, eps, loggamma_from_noise(eps, 0.5 * df))


def rsample_and_log_prob(
    key: Array, dist: MultivariateT, sample_shape: int | base.Shape = ()) -> tuple[Array, Array]:
  """Draws ``sample_shape + batch + [D]`` and their log-densities ``sample_shape + batch``."""
  eps, log_g, _ = noise(key, dist, sample_shape)
  return _from_noise(dist, eps, log_g)


def rsample(key: Array, dist: MultivariateT, sample_shape: int | base.Shape = ()) -> Array:
  """Reparameterized draws of shape ``sample_shape + batch + [D]`` (gradients to all three
  parameters)."""
  return rsample_and_log_prob(key, dist, sample_shape)[0]


def log_prob(dist: MultivariateT, z: ArrayLike) -> Array:
  """``log t_D(z | loc, diag(scale^2), df)`` of shape ``[...]`` for ``z`` of shape ``[..., D]``."""
  u = (jnp.asarray(z, dist.dtype) - dist.loc) / dist.scale
  d = dist.event_shape[0]
  kernel = log1p_norm_ratio(log_norm(u, 2), jnp.log(dist.df))
  return (log_normalizer(dist.df, d) - jnp.sum(jnp.log(dist.scale), -1) - 0.5 *
          (dist.df + d) * kernel)


def mean(dist: MultivariateT) -> Array:
  """``loc`` for df > 1, else ``inf``; shape ``batch + [D]``."""
  return moments(dist, dist.df)[0]


def variance(dist: MultivariateT) -> Array:
  """``scale^2 df / (df - 2)`` per dimension for df > 2 (inf / nan below); ``batch + [D]``."""
  df = jnp.where(dist.df > 2, dist.df, 3.0)
  return moments(dist, df / (df - 2))[1]


def covariance(dist: MultivariateT) -> Array:
  """``diag(variance)``, shape ``batch + [D, D]``: the coordinates are uncorrelated."""
  v = variance(dist)
  eye = jnp.eye(v.shape[-1], dtype=v.dtype)
  return jnp.where(eye > 0, v[..., None], 0.0)


def from_flat(raw: ArrayLike, latent_dim: int, df: float = DEFAULT_DF) -> MultivariateT:
  """The distribution an encoder predicts as ``raw = [loc | raw scale]`` (``2 D`` values)."""
  return from_flat_of(MultivariateT, raw, latent_dim, df)


def standard_prior(shape: base.Shape, df: float = DEFAULT_DF) -> MultivariateT:
  """``t_D(0, I, df)`` with batch ``shape[:-1]`` and ``D = shape[-1]`` (t3VAE's prior)."""
  shape = tuple(shape)
  return MultivariateT(jnp.zeros(shape), jnp.ones(shape), jnp.full(shape[:-1], df))


def _option_df(options: Mapping[str, Any] | None, name: str = DF_OPTION) -> float:
  return float((options or {}).get(name, DEFAULT_DF))


INFO = registry.register_family(
    registry.FamilyInfo(
        name="multivariate_t",
        cls=MultivariateT,
        event_ndim=1,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        transform=transform,
        num_raw=lambda d, options: num_raw(d),
        from_flat=lambda raw, d, options, shared: from_flat(raw, d, _option_df(options)),
        standard_prior=lambda shape, options=None: standard_prior(shape, _option_df(options)),
        description="multivariate t_nu(mu, diag(sigma^2)) (t3VAE): mean and positive scale per "
        "dimension from the encoder, df fixed (config.latent_df, 5)",
    ))
