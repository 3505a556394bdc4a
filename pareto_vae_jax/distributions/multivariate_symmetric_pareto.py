"""Multivariate symmetric Pareto (symPareto) latent: the l1 counterpart of the multivariate t.

Source. ParetoVAE (Cho, Seong, Won; ICLR 2026; OpenReview s5a8zBPFfe) introduces the symPareto as
"an l1-norm-based counterpart of the multivariate t distribution" and uses it for the prior and
the encoder. Only the paper's abstract (OpenReview and iclr.cc pages) was reachable from this
workplace: its definitions, normalizing constant and sampler could not be read. Everything
below is MY DERIVATION of the l1 analogue of ``multivariate_t``; it should be checked against the
paper's definition (section 3 there) before results are attributed to ParetoVAE.

Definition (my derivation). With location ``mu = loc``, per-dimension scale ``sigma = scale > 0``
and tail index ``nu = df > 0``, ``u = (z - mu) / sigma`` and ``|u|_1 = sum_i |u_i|``:

    p(z) = Gamma(nu + D) / (Gamma(nu) (2 nu)^D prod_i sigma_i) * (1 + |u|_1 / nu)^(-(nu + D)).

Normalizing constant: the l1 ball of radius r has volume (2 r)^D / D!, so its sphere has
measure 2^D r^(D-1) / (D - 1)! and, with r = nu t,
``int (1 + |u|_1 / nu)^(-(nu+D)) du = 2^D nu^D / (D-1)! int_0^inf t^(D-1) (1 + t)^(-(nu+D)) dt
= 2^D nu^D B(D, nu) / (D-1)! = (2 nu)^D Gamma(nu) / Gamma(nu + D)``.

D = 1: ``p(z) = (1 / (2 sigma)) (1 + |u| / nu)^(-(nu + 1))``, the Lomax of shape nu and scale
``nu sigma`` reflected about mu: the factorized ``SymmetricPareto(loc=mu, alpha=nu,
scale=nu sigma)``.

Stochastic representation (my derivation). The radius ``R = |u|_1`` has density
``2^D r^(D-1) / (D-1)! * c (1 + r / nu)^(-(nu+D))`` (c the constant above), i.e.
``R / nu ~ BetaPrime(D, nu)``, so ``R = nu G_D / G_nu`` with independent ``G_D ~ Gamma(D)``,
``G_nu ~ Gamma(nu)``; the direction ``U = u / R`` is uniform on the unit l1 sphere (cone measure)
and independent of R: ``U_i = s_i E_i / sum_j E_j``, ``E_i ~ Exp(1)`` iid, ``s_i`` fair signs,
with ``sum_j E_j ~ Gamma(D)`` independent of U. Taking ``G_D = sum_j E_j``,

    u = R U = nu L / G_nu,    L_i = s_i E_i iid standard Laplace,  G_nu ~ Gamma(nu, 1):

a Laplace scale mixture, as the t is a Gaussian one. Draws: ``z = loc + scale * nu * L / g``,
the Laplace vector from standard normals ``eps`` by ``s_i = sign(eps_i)``,
``E_i = -log P(|N| > |eps_i|) = -log 2 - log Phi(-|eps_i|)`` (exact: ``|eps_i|``'s survival
probability is uniform), and ``log g`` by ``jax.random.loggamma`` (implicitly reparameterized, so
``df`` gets a pathwise gradient). As for ``multivariate_t``, ``transform(dist, eps)`` keys ``g``
by a hash of ``eps`` (``multivariate_t.loggamma_from_noise``) because the joint-family contract
supplies only D normals; ``rsample`` splits its key. The log-density of a draw comes from the
noise: ``|u|_1 / nu = sum_i E_i / g``.

Moments (my derivation, from the representation; ``E[g^-k] = Gamma(nu - k) / Gamma(nu)``):
``E[z] = loc`` for nu > 1 (``inf`` otherwise); ``Var[z_i] = sigma_i^2 nu^2 E[L^2] E[g^-2]
= 2 sigma_i^2 nu^2 / ((nu - 1)(nu - 2))`` for nu > 2 (inf for 1 < nu <= 2, nan for nu <= 1);
``Cov[z_i, z_j] = 0`` for i != j, though the coordinates are dependent. Each coordinate is
(by D = 1 of the representation) ``SymmetricPareto(mu_i, nu, nu sigma_i)``:
``P(|u_i| > x) = E[exp(-x g / nu)] = (1 + x / nu)^-nu``. The radial CDF is
``P(R <= r) = I_{r / (nu + r)}(D, nu)`` (regularized incomplete beta).

As a ``--latent``: the encoder predicts ``loc`` and ``scale`` per dimension (``num_raw = 2 D``,
``[loc | raw scale]``, ``scale = softplus + 1e-4``); ``df`` is fixed: ``options[
"multivariate_symmetric_pareto_df"]`` if the trainer's joint options carry it, else
``DEFAULT_DF = 5`` (the trainer passes ``config.latent_df``). Prior and KL as for
``multivariate_t``: ``--prior=standard`` is the family's own ``standard_prior``
(``symPareto(0, 1, df)``, the same df) and the KL is the single-draw estimate ``log q(z) - log
p(z)``; no closed-form ``KL(symPareto || symPareto)`` is registered (ParetoVAE replaces the KL by the gamma-power divergence, which is not implemented
here).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import base, registry
from pareto_vae_jax.distributions import multivariate_t as mvt

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

DEFAULT_DF = 5.0
DF_OPTION = "multivariate_symmetric_pareto_df"
_LOG2 = math.log(2.0)


@jax.tree_util.register_pytree_node_class
class MultivariateSymmetricPareto(mvt.LocScaleDf):
  """symPareto ``(loc, scale, df)`` over the last axis (module docstring; my derivation).

  Args:
    loc: location (the mean for df > 1), shape ``[..., D]``.
    scale: per-dimension scale sigma, > 0, shape ``[..., D]``.
    df: tail index nu > 0, shape ``[...]`` or scalar (default 5).
  """


def log_normalizer(df: Array, d: int) -> Array:
  """``log Gamma(nu + D) - log Gamma(nu) - D log(2 nu)``."""
  gammaln = jax.scipy.special.gammaln
  return gammaln(df + d) - gammaln(df) - d * jnp.log(2 * df)


def laplace_from_normal(eps: Array) -> tuple[Array, Array]:
  """(L, log sum_i |L_i|): iid standard Laplace ``L_i = sign(eps_i) E_i`` from standard normals,
  ``E_i = -log 2 - log Phi(-|eps_i|) ~ Exp(1)``."""
  e = -_LOG2 - jax.scipy.special.log_ndtr(-jnp.abs(eps))
  return jnp.sign(eps) * e, mvt.log_norm(e, 1)


def _from_noise(dist: MultivariateSymmetricPareto, eps: Array, log_g: Array) -> tuple[Array, Array]:
  d = eps.shape[-1]
  df = jnp.broadcast_to(dist.df, log_g.shape)
  lap, log_l1 = laplace_from_normal(eps)
  # u = nu L / g; |u|_1 / nu = sum |L_i| / g.
  z = dist.loc + dist.scale * lap * jnp.exp(jnp.log(df) - log_g)[..., None]
  kernel = mvt.log1p_norm_ratio(log_l1, log_g)
  log_q = log_normalizer(df, d) - jnp.sum(jnp.log(dist.scale), -1) - (df + d) * kernel
  return z, log_q


def transform(dist: MultivariateSymmetricPareto, eps: ArrayLike) -> tuple[Array, Array]:
  """A draw and its log-density from standard-normal ``eps`` ``[..., D]`` alone (``g`` keyed by
  a hash of ``eps``; module docstring).

  Returns:
    ``(z, log_q)`` of shapes ``S + [D]`` and ``S``, S the broadcast batch shape.
  """
  eps = jnp.asarray(eps, dist.dtype)
  _, eps, df = mvt.batch_of(dist, eps)
  return _from_noise(dist, eps, mvt.loggamma_from_noise(eps, df))


def rsample_and_log_prob(
    key: Array, dist: MultivariateSymmetricPareto,
    sample_shape: int | base.Shape = ()) -> tuple[Array, Array]:
  """Draws ``sample_shape + batch + [D]`` and their log-densities ``sample_shape + batch``."""
  eps, log_g, _ = mvt.noise(key, dist, sample_shape)
  return _from_noise(dist, eps, log_g)


def rsample(key: Array, dist: MultivariateSymmetricPareto,
            sample_shape: int | base.Shape = ()) -> Array:
  """Reparameterized draws ``sample_shape + batch + [D]`` (gradients to loc, scale and df)."""
  return rsample_and_log_prob(key, dist, sample_shape)[0]


def log_prob(dist: MultivariateSymmetricPareto, z: ArrayLike) -> Array:
  """The joint log-density of ``z`` ``[..., D]``, shape ``[...]``."""
  u = (jnp.asarray(z, dist.dtype) - dist.loc) / dist.scale
  d = dist.event_shape[0]
  kernel = mvt.log1p_norm_ratio(mvt.log_norm(u, 1), jnp.log(dist.df))
  return (log_normalizer(dist.df, d) - jnp.sum(jnp.log(dist.scale), -1) - (dist.df + d) * kernel)


def mean(dist: MultivariateSymmetricPareto) -> Array:
  """``loc`` for df > 1, else ``inf``; shape ``batch + [D]``."""
  return mvt.moments(dist, dist.df)[0]


def variance(dist: MultivariateSymmetricPareto) -> Array:
  """``2 scale^2 df^2 / ((df - 1)(df - 2))`` for df > 2 (inf / nan below); ``batch + [D]``."""
  df = jnp.where(dist.df > 2, dist.df, 3.0)
  return mvt.moments(dist, 2 * df * df / ((df - 1) * (df - 2)))[1]


def covariance(dist: MultivariateSymmetricPareto) -> Array:
  """``diag(variance)``, shape ``batch + [D, D]``: the coordinates are uncorrelated."""
  v = variance(dist)
  eye = jnp.eye(v.shape[-1], dtype=v.dtype)
  return jnp.where(eye > 0, v[..., None], 0.0)


def radius_log_prob(df: ArrayLike, d: int, r: ArrayLike) -> Array:
  """``log`` density of ``R = |u|_1`` at ``r > 0``: ``R / nu ~ BetaPrime(D, nu)``."""
  df, r = jnp.asarray(df), jnp.asarray(r)
  gammaln = jax.scipy.special.gammaln
  return (gammaln(df + d) - gammaln(df) - gammaln(d) - d * jnp.log(df) + (d - 1) * jnp.log(r) -
          (df + d) * jnp.log1p(r / df))


def from_flat(raw: ArrayLike,
              latent_dim: int,
              df: float = DEFAULT_DF) -> MultivariateSymmetricPareto:
  """The distribution an encoder predicts as ``raw = [loc | raw scale]`` (``2 D`` values)."""
  return mvt.from_flat_of(MultivariateSymmetricPareto, raw, latent_dim, df)


def standard_prior(shape: base.Shape, df: float = DEFAULT_DF) -> MultivariateSymmetricPareto:
  """``symPareto(0, 1, df)`` with batch ``shape[:-1]`` and ``D = shape[-1]``."""
  shape = tuple(shape)
  return MultivariateSymmetricPareto(jnp.zeros(shape), jnp.ones(shape), jnp.full(shape[:-1], df))


INFO = registry.register_family(
    registry.FamilyInfo(
        name="multivariate_symmetric_pareto",
        cls=MultivariateSymmetricPareto,
        event_ndim=1,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        transform=transform,
        num_raw=lambda d, options: mvt.num_raw(d),
        from_flat=lambda raw, d, options, shared: from_flat(
            raw, d, float((options or {}).get(DF_OPTION, DEFAULT_DF))),
        standard_prior=lambda shape, options=None: standard_prior(
            shape, float((options or {}).get(DF_OPTION, DEFAULT_DF))),
        description="multivariate symmetric Pareto (ParetoVAE's symPareto, l1 analogue of the t; "
        "my derivation): mean and positive scale per dimension from the encoder, df fixed "
        "(config.latent_df, 5)",
    ))
