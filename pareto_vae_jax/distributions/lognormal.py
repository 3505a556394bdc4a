"""LogNormal latent: z = exp(x), x ~ N(loc, scale^2)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import base, registry
from pareto_vae_jax.distributions.gaussian import kl_normal, normal_log_prob

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class LogNormal(base.Distribution):
  """LogNormal on (0, inf), parameterized by its underlying normal.

  Args:
    loc: mean of log z, any real.
    scale: standard deviation of log z, > 0.
  """

  param_names = ("loc", "scale")
  positive = ("scale",)

  def __init__(self, loc: ArrayLike, scale: ArrayLike):
    super().__init__(loc, scale)


def rsample_log(key: Array, dist: LogNormal, sample_shape: tuple[int, ...] = ()) -> Array:
  eps = jax.random.normal(key, sample_shape + dist.batch_shape, dist.dtype)
  return dist.loc + dist.scale * eps


def rsample(key: Array, dist: LogNormal, sample_shape: tuple[int, ...] = ()) -> Array:
  # The study, algorithm 2: exponentiate a reparameterized normal.
  return jnp.exp(rsample_log(key, dist, sample_shape))


def log_prob_log(dist: LogNormal, log_z: ArrayLike) -> Array:
  # Change of variables z = exp(x): q(z) = N(log z; loc, scale) / z (the study, eq. 1).
  return normal_log_prob(dist.loc, dist.scale, log_z) - log_z


def log_prob(dist: LogNormal, z: ArrayLike) -> Array:
  positive = z > 0
  safe_z = jnp.where(positive, z, 1.0)
  return jnp.where(positive, log_prob_log(dist, jnp.log(safe_z)), -jnp.inf)


def mean(dist: LogNormal) -> Array:
  # The study, table 1: exp(mu + sigma^2 / 2).
  return jnp.exp(dist.loc + 0.5 * jnp.square(dist.scale))


def mean_log(dist: LogNormal) -> Array:
  """E[log z] = loc."""
  return dist.loc


def variance(dist: LogNormal) -> Array:
  # The study, table 1: (exp(sigma^2) - 1) exp(2 mu + sigma^2); expm1 keeps small sigma exact.
  s2 = jnp.square(dist.scale)
  return jnp.expm1(s2) * jnp.exp(2 * dist.loc + s2)


@registry.register_kl(LogNormal, LogNormal)
def _kl_lognormal_lognormal(q: LogNormal, p: LogNormal) -> Array:
  # KL is invariant under the bijection log, so it equals the KL of the underlying normals
  # (the study, section 2.3.1).
  return kl_normal(q.loc, q.scale, p.loc, p.scale)


INFO = registry.register_family(
    registry.FamilyInfo(
        name="lognormal",
        cls=LogNormal,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        heads={
            "loc": "identity",
            "scale": "softplus"
        },
        standard_prior=lambda shape: LogNormal(jnp.zeros(shape), jnp.ones(shape)),
        rsample_log=rsample_log,
        mean_log=mean_log,
        log_prob_log=log_prob_log,
    ))
