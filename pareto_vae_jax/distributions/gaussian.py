"""Diagonal Gaussian latent N(loc, scale^2)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import base, registry

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class Gaussian(base.Distribution):
  """Gaussian with independent coordinates.

  Args:
    loc: mean, any real.
    scale: standard deviation, > 0.
  """

  param_names = ("loc", "scale")
  positive = ("scale",)

  def __init__(self, loc: ArrayLike, scale: ArrayLike):
    super().__init__(loc, scale)


def rsample(key: Array, dist: Gaussian, sample_shape: tuple[int, ...] = ()) -> Array:
  eps = jax.random.normal(key, sample_shape + dist.batch_shape, dist.dtype)
  return dist.loc + dist.scale * eps


def log_prob(dist: Gaussian, z: ArrayLike) -> Array:
  return normal_log_prob(dist.loc, dist.scale, z)


def normal_log_prob(loc: ArrayLike, scale: ArrayLike, z: ArrayLike) -> Array:
  """log N(z; loc, scale^2), elementwise."""
  u = (z - loc) / scale
  return -0.5 * u * u - jnp.log(scale) - _HALF_LOG_2PI


def kl_normal(loc_q: ArrayLike, scale_q: ArrayLike, loc_p: ArrayLike, scale_p: ArrayLike) -> Array:
  """KL(N(loc_q, scale_q^2) || N(loc_p, scale_p^2)), elementwise.

  Formula: 1/2 [r^2 + ((m_q - m_p)/s_p)^2 - 1] - log r with r = s_q / s_p (the study, section
  2.3.1, whose eq. 4 is the case N(0, 1); checked by quadrature in tests/test_kl.py). Written through log r so that r near 1 does not
  lose the small difference: r^2 - 1 - 2 log r = expm1(2 log r) - 2 log r.
  """
  log_r = jnp.log(scale_q) - jnp.log(scale_p)
  d = (loc_q - loc_p) / scale_p
  return 0.5 * (jnp.expm1(2 * log_r) - 2 * log_r + d * d)


def mean(dist: Gaussian) -> Array:
  return dist.loc


def variance(dist: Gaussian) -> Array:
  return jnp.square(dist.scale)


@registry.register_kl(Gaussian, Gaussian)
def _kl_gaussian_gaussian(q: Gaussian, p: Gaussian) -> Array:
  return kl_normal(q.loc, q.scale, p.loc, p.scale)


INFO = registry.register_family(
    registry.FamilyInfo(
        name="gaussian",
        cls=Gaussian,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        heads={
            "loc": "identity",
            "scale": "softplus"
        },
        standard_prior=lambda shape: Gaussian(jnp.zeros(shape), jnp.ones(shape)),
    ))
