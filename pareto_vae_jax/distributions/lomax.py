"""Lomax (Pareto type II) latent: density (alpha / lam) (1 + z / lam)^-(alpha+1) on [0, inf).

1 + z / lam is Pareto(alpha, 1), i.e. log(1 + z / lam) = E / alpha with E ~ Exp(1): the Lomax
is the Pareto shifted to start at 0, with the same tail index. Sampling and densities are
written in log z, which stays finite for tail indices far below 1 where z overflows float32.

KL between two Lomax: with a shared scale, KL is invariant under z -> 1 + z / lam, so it is the
Pareto one, log(a_q / a_p) + a_p / a_q - 1 (``kl_pareto(a_q, a_p)``). With scales lam_q != lam_p
it needs E_q[log(1 + z / lam_p)] = (r / a_q) 2F1(1, 1; a_q + 1; 1 - r), r = lam_q / lam_p, a
Gauss hypergeometric function with no stable, differentiable JAX implementation. No closed
form is registered, so the trainer uses the Monte Carlo estimate log q(z) - log p(z).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax.distributions import base, registry
from pareto_vae_jax.distributions.weibull import log_standard_exponential

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

# Below this E / alpha, log(expm1(x)) is taken as log x + x/2 + x^2/24 (error < x^4 / 2880).
_SERIES_BELOW = 1e-2


class Lomax(base.Distribution):
  """Lomax (Pareto type II with location 0).

  Args:
    alpha: shape (tail index), > 0. Smaller is heavier-tailed; moments of order >= alpha
      are infinite.
    scale: lam, > 0. The density at 0 is alpha / lam.
  """

  param_names = ("alpha", "scale")
  positive = ("alpha", "scale")

  def __init__(self, alpha: ArrayLike, scale: ArrayLike = 1.0):
    super().__init__(alpha, scale)


def rsample_log(key: Array, dist: Lomax, sample_shape: tuple[int, ...] = ()) -> Array:
  # Inverse CDF z = lam expm1(E / alpha), E ~ Exp(1), in log space: log z = log lam + log expm1(x)
  # with x = E / alpha. Three forms of log expm1(x), each exact where it is used:
  #   x <  1e-2: log E - log alpha + x/2 + x^2/24, the series of log(expm1(x) / x), which stays
  #              exact where x = E / alpha itself would underflow (large alpha, tiny E);
  #   1e-2 <= x < 1 - log(eps): x + log(-expm1(-x)), with no exp(x) that overflows;
  #   x >= 1 - log(eps): x itself, which that form rounds to (exp(-x) < eps / e is below half an
  #              ulp of x). Its derivative is exactly 1, where that of log(-expm1(-x)) underflows
  #              to 0 (x > 87 in float32): a draw z that overflows to inf sends an infinite
  #              cotangent back, and inf * 0 made the gradient of rsample nan there.
  log_e = log_standard_exponential(key, sample_shape + dist.batch_shape, dist.dtype)
  x = jnp.exp(log_e) / dist.alpha
  small = x < _SERIES_BELOW
  huge = x >= 1 - np.log(jnp.finfo(dist.dtype).eps)
  # Double where: each form sees a harmless x where it is not used, so that the zero cotangent
  # of an unused branch meets a finite derivative.
  x_large = jnp.where(small | huge, 1.0, x)
  large_form = x_large + jnp.log(-jnp.expm1(-x_large))
  small_form = log_e - jnp.log(dist.alpha) + x * (0.5 + x / 24)
  log_ratio = jnp.where(small, small_form, jnp.where(huge, x, large_form))
  return jnp.log(dist.scale) + log_ratio


def rsample(key: Array, dist: Lomax, sample_shape: tuple[int, ...] = ()) -> Array:
  # Like the Pareto's: exp overflows once E / alpha > 88.72, so every float32 draw (E <= 15.94)
  # is finite for alpha >= 0.18 and unit scale. An overflowed draw is +inf, with gradient -inf
  # in alpha and +inf in scale (never nan; tests/test_extremes.py).
  return jnp.exp(rsample_log(key, dist, sample_shape))


def log_prob_log(dist: Lomax, log_z: ArrayLike) -> Array:
  # log f = log alpha - log lam - (alpha + 1) log(1 + z / lam), with
  # log(1 + z / lam) = softplus(log z - log lam): finite for any log z, 0 at log z = -inf.
  return (jnp.log(dist.alpha) - jnp.log(dist.scale) -
          (dist.alpha + 1) * jax.nn.softplus(log_z - jnp.log(dist.scale)))


def log_prob(dist: Lomax, z: ArrayLike) -> Array:
  # The support [0, inf) includes 0, where the density is alpha / lam.
  inside = z >= 0
  log_z = jnp.log(jnp.where(inside, z, 1.0))
  return jnp.where(inside, log_prob_log(dist, log_z), -jnp.inf)


def mean(dist: Lomax) -> Array:
  # lam / (alpha - 1), finite only for alpha > 1.
  finite = dist.alpha > 1
  a = jnp.where(finite, dist.alpha, 2.0)
  return jnp.where(finite, dist.scale / (a - 1), jnp.inf)


def mean_log(dist: Lomax) -> Array:
  """E[log z] = log lam - euler_gamma - digamma(alpha).

  z / lam = G_1 / G_alpha for independent G_a ~ Gamma(a, 1) (a beta prime (1, alpha)
  variable), and E[log G_a] = digamma(a), with digamma(1) = -euler_gamma. Checked by quadrature
  in tests/test_log_prob.py. It is ~ log lam + 1 / alpha for small alpha, like the
  Pareto's.
  """
  return jnp.log(dist.scale) - np.euler_gamma - jax.scipy.special.digamma(dist.alpha)


def variance(dist: Lomax) -> Array:
  # lam^2 alpha / ((alpha - 1)^2 (alpha - 2)), finite only for alpha > 2.
  finite = dist.alpha > 2
  a = jnp.where(finite, dist.alpha, 3.0)
  return jnp.where(finite, jnp.square(dist.scale) * a / (jnp.square(a - 1) * (a - 2)), jnp.inf)


INFO = registry.register_family(
    registry.FamilyInfo(
        name="lomax",
        cls=Lomax,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        heads={
            "alpha": "softplus_1e-3",
            "scale": "softplus"
        },
        # Lomax(1, 1): 1 + z ~ Pareto(1, 1), the Pareto's default standard prior moved to start at 0.
        standard_prior=lambda shape, alpha=1.0, scale=1.0: Lomax(jnp.full(shape, alpha),
                                                                 jnp.full(shape, scale)),
        rsample_log=rsample_log,
        mean_log=mean_log,
        log_prob_log=log_prob_log,
        decode_log=True,
    ))
