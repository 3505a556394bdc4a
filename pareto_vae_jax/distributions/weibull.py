"""Weibull latent: density (k / lam) (z / lam)^(k-1) exp(-(z / lam)^k) on (0, inf).

(z / lam)^k is Exponential(1) distributed, so log z = log lam + log(E) / k with E ~ Exp(1).
Sampling, densities, moments and the KL are all written in terms of log z and log-gamma
values, which stay finite for concentrations far from 1 where z itself under- or overflows.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from pareto_vae_jax.distributions import base, registry

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

# zeta(n) for n = 2..24 (scipy.special.zeta): the coefficients of the Taylor series of log-gamma.
_ZETA = (1.6449340668482264, 1.2020569031595942, 1.0823232337111381, 1.0369277551433700,
         1.0173430619844492, 1.0083492773819230, 1.0040773561979444, 1.0020083928260821,
         1.0009945751278180, 1.0004941886041194, 1.0002460865533080, 1.0001227133475785,
         1.0000612481350588, 1.0000305882363070, 1.0000152822594086, 1.0000076371976379,
         1.0000038172932650, 1.0000019082127165, 1.0000009539620338, 1.0000004769329869,
         1.0000002384505027, 1.0000001192199260, 1.0000000596081890)
# Below this |x| the series is used (truncation error < 0.25^25 / 25 = 4e-17); above it the
# error of float32 log-gamma near 1 (~1e-6 absolute, measured) is < 2e-5 of the value.
_SERIES_BELOW = 0.25


class Weibull(base.Distribution):
  """Weibull on (0, inf).

  Args:
    concentration: k, > 0. Below 1 the density is infinite at 0 and the tail is heavier than
      exponential (though every moment is finite); k = 1 is Exponential(1 / lam).
    scale: lam, > 0.
  """

  param_names = ("concentration", "scale")
  positive = ("concentration", "scale")

  def __init__(self, concentration: ArrayLike, scale: ArrayLike = 1.0):
    super().__init__(concentration, scale)


def log_standard_exponential(key: Array, shape: tuple[int, ...], dtype) -> Array:
  """``log E`` for E ~ Exponential(1), finite for every draw.

  E = -log(1 - u) with u ~ U[tiny, 1): u is floored at the smallest normal float so that E, and
  hence log E, is never 0 / -inf (in float32, log E lies in [-87.3, 2.77]).

  Args:
    key: a JAX PRNG key.
    shape: the shape of the draw.
    dtype: a floating dtype.

  Returns:
    ``log E`` with the given shape and dtype.
  """
  u = jax.random.uniform(key, shape, dtype, minval=jnp.finfo(dtype).tiny)
  return jnp.log(-jnp.log1p(-u))


def rsample_log(key: Array, dist: Weibull, sample_shape: tuple[int, ...] = ()) -> Array:
  # Inverse CDF z = lam (-log(1 - u))^(1/k), taken in log space.
  log_e = log_standard_exponential(key, sample_shape + dist.batch_shape, dist.dtype)
  return jnp.log(dist.scale) + log_e / dist.concentration


def rsample(key: Array, dist: Weibull, sample_shape: tuple[int, ...] = ()) -> Array:
  # exp leaves the float32 range once |log z| > ~87.3 (subnormals flush to 0 on CPU): for
  # k = 0.1 and lam = 1 the draws with E < exp(-8.73), a fraction 1.6e-4, underflow to 0.
  return jnp.exp(rsample_log(key, dist, sample_shape))


def log_prob_log(dist: Weibull, log_z: ArrayLike) -> Array:
  # log f = log k - log z + t - exp(t) with t = k log(z / lam) = log((z / lam)^k); t never
  # leaves the range of log E for a draw of this distribution.
  t = dist.concentration * (log_z - jnp.log(dist.scale))
  return jnp.log(dist.concentration) - log_z + t - jnp.exp(t)


def log_prob(dist: Weibull, z: ArrayLike) -> Array:
  # The support is (0, inf): z = 0 (an underflowed draw) and z = inf get -inf.
  inside = (z > 0) & (z < jnp.inf)
  log_z = jnp.log(jnp.where(inside, z, 1.0))
  return jnp.where(inside, log_prob_log(dist, log_z), -jnp.inf)


def _lgamma1p_above_tangent(x: Array) -> Array:
  """log Gamma(1 + x) + euler_gamma x, accurate also where it is tiny (|x| << 1), for x > -1.

  Its Taylor series is sum_{n >= 2} (-1)^n zeta(n) x^n / n (Abramowitz & Stegun 6.1.33), used
  for |x| < 0.25; there the direct difference would lose the leading x^2 term to rounding.
  """
  small = jnp.abs(x) < _SERIES_BELOW
  x_series = jnp.where(small, x, 0.0)  # keeps x^24 (and its gradient) finite in the other branch
  series = jnp.zeros_like(x)
  for n in range(len(_ZETA) + 1, 1, -1):  # Horner's rule from the highest power down
    series = x_series * (series + (-1)**n * _ZETA[n - 2] / n)
  series = x_series * series
  direct = jax.scipy.special.gammaln(1 + x) + np.euler_gamma * x
  return jnp.where(small, series, direct)


def _expm1_minus_identity(s: Array) -> Array:
  """exp(s) - 1 - s, keeping its relative precision where it is ~s^2/2 << |s|.

  expm1(s) - s cancels to an absolute error of eps |s|, i.e. a relative one of 2 eps / |s|
  (1e-3 at s = 1e-4 in float32); for |s| < 0.1 the series sum_{n=2..11} s^n / n! is used instead
  (truncation error < 0.1^12 / 12! ~ 2e-21).
  """
  small = jnp.abs(s) < 0.1
  s_series = jnp.where(small, s, 0.0)
  series = jnp.zeros_like(s)
  for n in range(11, 1, -1):  # Horner's rule: s^2 (1/2! + s (1/3! + ...))
    series = s_series * series + 1 / math.factorial(n)
  return jnp.where(small, s_series * s_series * series, jnp.expm1(s) - s)


def mean(dist: Weibull) -> Array:
  # lam Gamma(1 + 1/k); overflows to inf in float32 once that exceeds 3.4e38 (k < 0.0294 for
  # lam = 1), though the mean is finite for every k.
  return jnp.exp(jnp.log(dist.scale) + jax.scipy.special.gammaln(1 + 1 / dist.concentration))


def mean_log(dist: Weibull) -> Array:
  """E[log z] = log lam - euler_gamma / k, since E[log E] = -euler_gamma for E ~ Exp(1)."""
  return jnp.log(dist.scale) - np.euler_gamma / dist.concentration


def variance(dist: Weibull) -> Array:
  # lam^2 [Gamma(1 + 2/k) - Gamma(1 + 1/k)^2] = lam^2 Gamma(1 + 2/k) (1 - exp(-d)) with
  # d = lgamma(1 + 2/k) - 2 lgamma(1 + 1/k) >= 0, formed from the tangent-free parts so that for
  # large k (d ~ zeta(2) / k^2) the two nearly equal Gamma values do not cancel.
  x = 1 / dist.concentration
  d = _lgamma1p_above_tangent(2 * x) - 2 * _lgamma1p_above_tangent(x)
  return jnp.exp(2 * jnp.log(dist.scale) + jax.scipy.special.gammaln(1 + 2 * x) +
                 jnp.log(-jnp.expm1(-d)))


def _kl_weibull_terms(k1: Array, lam1: Array, k2: Array,
                      lam2: Array) -> tuple[Array, Array, Array, Array]:
  """(s, shape_term, delta, log_ratio) of ``kl_weibull``'s regrouping (see there)."""
  delta = (k2 - k1) / k1  # rho - 1, without rounding rho first
  shape_term = _lgamma1p_above_tangent(delta)  # log Gamma(rho) + euler_gamma (rho - 1)
  # log(lam1 / lam2) from the exact difference lam1 - lam2 where the scales are close; the
  # difference of two rounded logs would carry an absolute error of ~1e-7 into a tiny KL.
  close = jnp.abs(lam1 - lam2) < 0.5 * lam2
  log_ratio = jnp.where(close, jnp.log1p(jnp.where(close, lam1 - lam2, 0.0) / lam2),
                        jnp.log(lam1) - jnp.log(lam2))
  # log Gamma(1 + rho) = log rho + log Gamma(rho).
  s = k2 * log_ratio + jnp.log1p(delta) + shape_term - np.euler_gamma * delta
  return s, shape_term, delta, log_ratio


def _kl_weibull_value(s: Array, shape_term: Array) -> tuple[Array, Array]:
  """The KL from its two terms, and where exp(s) overflows (the KL is then +inf)."""
  # Not the nan of inf - inf; the double where keeps the unused branch finite.
  overflow = s > np.log(np.finfo(s.dtype).max)
  value = _expm1_minus_identity(jnp.where(overflow, 0.0, s)) + shape_term
  return jnp.where(overflow, jnp.inf, value), overflow


@jax.custom_jvp
def _kl_weibull(k1: Array, lam1: Array, k2: Array, lam2: Array) -> Array:
  return _kl_weibull_value(*_kl_weibull_terms(k1, lam1, k2, lam2)[:2])[0]


def _kl_weibull_jvp(primals, tangents):
  """The KL's derivative as one coefficient per parameter, each formed before it is used.

  With KL = [exp(s) - 1 - s] + shape_term, every partial derivative is expm1(s) times a finite
  slope of s plus a finite slope of the shape term. Near the overflow of exp(s) (expm1(s) up
  to 3.4e38 in float32) the chain rule through the graph of s would multiply that factor into
  each path separately, and paths whose products overflow with opposite signs (through
  delta = (k2 - k1) / k1, and k2's two appearances in s) add up to inf - inf = nan: the KL of
  1.7e38 at (57.14, 5.5414, 18.038, 0.041836) had the gradient (nan, inf, nan, -inf). Here each
  coefficient multiplies expm1(s) once, by the slope already summed, so it is finite or +-inf,
  never nan; where the KL is +inf the coefficients are 0, as before.
  """
  k1, lam1, k2, lam2 = primals
  s, shape_term, delta, log_ratio = _kl_weibull_terms(k1, lam1, k2, lam2)
  value, overflow = _kl_weibull_value(s, shape_term)
  # d [exp(s) - 1 - s] / ds, capped at the largest float so that a zero slope gives 0, not nan.
  big = jnp.minimum(jnp.expm1(jnp.where(overflow, 0.0, s)), jnp.finfo(s.dtype).max)
  # d shape_term / d delta = digamma(rho) + euler_gamma, from the same series near rho = 1;
  # d s / d delta = 1 / rho + that - euler_gamma = digamma(1 + rho).
  _, shape_slope = jax.jvp(_lgamma1p_above_tangent, (delta,), (jnp.ones_like(delta),))
  s_slope = 1 / (1 + delta) + shape_slope - np.euler_gamma
  rho_over_k1 = (1 + delta) / k1  # -d delta / d k1; d delta / d k2 = 1 / k1
  coefficients = (
      big * (-rho_over_k1 * s_slope) - rho_over_k1 * shape_slope,  # k1
      big * (k2 / lam1),  # lam1
      big * (log_ratio + s_slope / k1) + shape_slope / k1,  # k2
      big * (-k2 / lam2),  # lam2
  )
  tangent = jnp.zeros_like(value)
  for coefficient, t in zip(coefficients, tangents):
    if not isinstance(t, SymbolicZero):  # a zero tangent adds nothing (not inf * 0 = nan)
      tangent = tangent + jnp.where(overflow, 0.0, coefficient) * t
  return value, tangent


_kl_weibull.defjvp(_kl_weibull_jvp, symbolic_zeros=True)


def kl_weibull(concentration_q: ArrayLike, scale_q: ArrayLike, concentration_p: ArrayLike,
               scale_p: ArrayLike) -> Array:
  """KL(Weibull(k1, lam1) || Weibull(k2, lam2)), elementwise.

  Bauckhage (2013), "Computing the Kullback-Leibler divergence between two Weibull
  distributions", arXiv:1310.3713:

    KL = log(k1 / lam1^k1) - log(k2 / lam2^k2) + (k1 - k2) (log lam1 - euler_gamma / k1)
         + (lam1 / lam2)^k2 Gamma(k2 / k1 + 1) - 1.

  With rho = k2 / k1 and s = k2 log(lam1 / lam2) + log Gamma(1 + rho) this regroups into two
  non-negative terms,

    KL = [exp(s) - 1 - s] + [log Gamma(rho) + euler_gamma (rho - 1)],

  the second convex in rho with its minimum 0 at rho = 1. Each is evaluated without
  cancellation (``_expm1_minus_identity``, ``_lgamma1p_above_tangent`` at rho - 1). So the
  KL is exactly 0 for q = p and keeps its small value for nearly equal parameters. Checked
  against quadrature and Monte Carlo in tests/test_kl.py and tests/test_mc_kl.py.

  The gradient is written out (``_kl_weibull_jvp``): expm1(s) times the slope of s, plus the
  slope of the shape term, per parameter, with d s / d rho = digamma(1 + rho).

  Args:
    concentration_q: k1 of q, > 0.
    scale_q: lam1 of q, > 0.
    concentration_p: k2 of p, > 0.
    scale_p: lam2 of p, > 0.

  Returns:
    The broadcast elementwise KL, ``>= 0``; ``inf``, with a zero gradient, where exp(s)
    overflows. Its gradient, ~KL times k2 / lam2 or k2 / k1, is finite below KL ~ 1e30 for
    parameters in [1e-2, 1e2]; in the band just below overflow it can itself overflow to
    +-inf (never nan).

  Example:
    >>> from pareto_vae_jax.distributions.weibull import kl_weibull
    >>> float(kl_weibull(2.0, 1.0, 2.0, 1.0))
    0.0
  """
  k1, lam1, k2, lam2 = jnp.broadcast_arrays(
      *(jnp.asarray(v, jnp.result_type(concentration_q, scale_q, concentration_p, scale_p, float))
        for v in (concentration_q, scale_q, concentration_p, scale_p)))
  return _kl_weibull(k1, lam1, k2, lam2)


@registry.register_kl(Weibull, Weibull)
def _kl_weibull_weibull(q: Weibull, p: Weibull) -> Array:
  return kl_weibull(q.concentration, q.scale, p.concentration, p.scale)


INFO = registry.register_family(
    registry.FamilyInfo(
        name="weibull",
        cls=Weibull,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        # k >= 0.5: the KL to the Exp(1) standard prior grows like Gamma(1 + 1/k) (9e157 at
        # k = 0.01) and overflows float32 below k ~ 0.03. With a floor of 1e-3, a freshly
        # initialized encoder reached it and the first training step of the tiny test config had
        # an infinite KL.
        heads={
            "concentration": "softplus_0.5",
            "scale": "softplus"
        },
        standard_prior=lambda shape, concentration=1.0, scale=1.0: Weibull(
            jnp.full(shape, concentration), jnp.full(shape, scale)),
        rsample_log=rsample_log,
        mean_log=mean_log,
        log_prob_log=log_prob_log,
    ))
