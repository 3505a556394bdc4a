"""Pareto type I latent: density alpha x_m^alpha / z^(alpha+1) on [x_m, inf).

Everything is computed through log(z / x_m), which is Exponential(alpha) distributed (its
mean 1/alpha is the guide's lemma 3.2.2): that keeps sampling, densities and gradients finite
for tail indices far below 1, where z itself overflows float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import base, registry

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class Pareto(base.Distribution):
  """Pareto type I.

  Args:
    alpha: shape (tail index), > 0. Smaller is heavier-tailed.
    scale: x_m, the lower end of the support, > 0.
  """

  param_names = ("alpha", "scale")
  positive = ("alpha", "scale")

  def __init__(self, alpha: ArrayLike, scale: ArrayLike = 1.0):
    super().__init__(alpha, scale)


def _standard_exponential(key: Array, shape: tuple[int, ...], dtype) -> Array:
  # Inverse CDF of Exp(1) at 1 - u with u ~ U[0, 1): 1 - u lies in (0, 1], so the log is
  # finite; in float32 the largest draw is -log(2^-23) = 15.94.
  u = jax.random.uniform(key, shape, dtype)
  return -jnp.log1p(-u)


def rsample_log(key: Array, dist: Pareto, sample_shape: tuple[int, ...] = ()) -> Array:
  # Inverse CDF z = x_m u^(-1/alpha) (the guide, section 4.2) taken in log space:
  # log z = log x_m + E / alpha with E = -log u ~ Exp(1).
  e = _standard_exponential(key, sample_shape + dist.batch_shape, dist.dtype)
  return jnp.log(dist.scale) + e / dist.alpha


def rsample(key: Array, dist: Pareto, sample_shape: tuple[int, ...] = ()) -> Array:
  # exp overflows to +inf once log z > log(max float) (88.72 in float32); see the README for
  # the range of alpha where every draw is finite.
  return jnp.exp(rsample_log(key, dist, sample_shape))


def log_prob_log(dist: Pareto, log_z: ArrayLike) -> Array:
  # log f = log alpha + alpha log x_m - (alpha + 1) log z (the guide, section 2.1), arranged
  # around y = log(z / x_m) >= 0 so that large log z does not cancel against alpha log x_m.
  y = log_z - jnp.log(dist.scale)
  inside = y >= 0
  value = jnp.log(dist.alpha) - log_z - dist.alpha * jnp.where(inside, y, 0.0)
  return jnp.where(inside, value, -jnp.inf)


def log_prob(dist: Pareto, z: ArrayLike) -> Array:
  positive = z > 0
  log_z = jnp.log(jnp.where(positive, z, 1.0))
  return jnp.where(positive, log_prob_log(dist, log_z), -jnp.inf)


def mean(dist: Pareto) -> Array:
  # alpha x_m / (alpha - 1), finite only for alpha > 1.
  finite = dist.alpha > 1
  a = jnp.where(finite, dist.alpha, 2.0)
  return jnp.where(finite, a * dist.scale / (a - 1), jnp.inf)


def mean_log(dist: Pareto) -> Array:
  """E[log z] = log x_m + 1 / alpha (log(z / x_m) is Exponential(alpha))."""
  return jnp.log(dist.scale) + 1 / dist.alpha


def variance(dist: Pareto) -> Array:
  # x_m^2 alpha / ((alpha - 1)^2 (alpha - 2)), finite only for alpha > 2.
  finite = dist.alpha > 2
  a = jnp.where(finite, dist.alpha, 3.0)
  return jnp.where(finite, jnp.square(dist.scale) * a / (jnp.square(a - 1) * (a - 2)), jnp.inf)


def kl_pareto(alpha_q: ArrayLike,
              alpha_p: ArrayLike,
              scale_q: ArrayLike = 1.0,
              scale_p: ArrayLike = 1.0) -> Array:
  """KL(Pareto(alpha_q, scale_q) || Pareto(alpha_p, scale_p)), elementwise.

  With log q - log p = log(a_q/a_p) + a_q log x_q - a_p log x_p - (a_q - a_p) log z and
  E_q[log z] = log x_q + 1/a_q (the guide, lemma 3.2.2):

    KL = a_p log(x_q / x_p) + log(a_q / a_p) + a_p / a_q - 1   if x_q >= x_p,
    KL = +inf                                                 if x_q <  x_p,

  because for x_q < x_p the posterior puts mass on [x_q, x_p) where the prior has none. With a
  shared scale this is the guide's log a_q - log a_p + a_p/a_q - 1. Checked by quadrature in
  tests/test_kl.py.

  Args:
    alpha_q: shape of q, > 0.
    alpha_p: shape of p, > 0.
    scale_q: x_m of q, > 0.
    scale_p: x_m of p, > 0.

  Returns:
    The broadcast elementwise KL, ``>= 0``, ``+inf`` on support mismatch.

  Example:
    >>> from pareto_vae_jax import kl_pareto
    >>> float(kl_pareto(2.0, 2.0))
    0.0
  """
  alpha_q, alpha_p, scale_q, scale_p = jnp.broadcast_arrays(
      *(jnp.asarray(v, jnp.result_type(alpha_q, alpha_p, scale_q, scale_p, float))
        for v in (alpha_q, alpha_p, scale_q, scale_p)))
  # log(a_q/a_p) + a_p/a_q - 1 = expm1(t) - t with t = log(a_p/a_q): no division by a tiny
  # a_q and no cancellation of 1 against a_p/a_q when the shapes are close.
  t = jnp.log(alpha_p) - jnp.log(alpha_q)
  log_ratio = jnp.log(scale_q) - jnp.log(scale_p)
  value = alpha_p * jnp.maximum(log_ratio, 0.0) + (jnp.expm1(t) - t)
  return jnp.where(log_ratio >= 0, value, jnp.inf)


@registry.register_kl(Pareto, Pareto)
def _kl_pareto_pareto(q: Pareto, p: Pareto) -> Array:
  return kl_pareto(q.alpha, p.alpha, q.scale, p.scale)


INFO = registry.register_family(
    registry.FamilyInfo(
        name="pareto",
        cls=Pareto,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        heads={
            "alpha": "softplus_1e-3",
            "scale": "softplus_1e-3"
        },
        standard_prior=lambda shape, alpha=1.0, scale=1.0: Pareto(jnp.full(shape, alpha),
                                                                  jnp.full(shape, scale)),
        rsample_log=rsample_log,
        mean_log=mean_log,
        log_prob_log=log_prob_log,
        decode_log=True,
    ))
