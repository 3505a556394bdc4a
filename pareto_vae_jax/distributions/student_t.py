"""Student-t latent: a real-valued family with polynomial tails of index df.

Density Gamma((df+1)/2) / (Gamma(df/2) sqrt(pi df) scale) (1 + u^2 / df)^-((df+1)/2) with
u = (z - loc) / scale. A draw is the Gaussian scale mixture z = loc + scale eps sqrt(df / (2 g)),
eps ~ N(0, 1), g ~ Gamma(df/2, 1): ``jax.random.loggamma`` differentiates g in its shape by
implicit reparameterization (Figurnov et al., 2018), so df gets a pathwise gradient like loc
and scale.

The support is real, so there is no log-space path: a draw overflows float32 once
|z - loc| > 3.4e38. That happens with probability P(|T_df| > 3.4e38 / scale): 1.9e-12 at
df = 0.3, 8.9e-8 at df = 0.18, 1.2e-4 at df = 0.1 and 0.4 at df = 0.01 (unit scale). An
overflowed draw is +-inf and its log_prob -inf, never nan, but the pathwise gradient of a batch
holding one is nan. The default head keeps df >= 0.5, where it is 3.5e-20.

KL between two Student-t distributions needs E_q[log(1 + u_p^2 / df_p)], u_p = (z - loc_p) /
scale_p, which has no elementary closed form in general: none is registered, and the trainer
uses the Monte Carlo estimate log q(z) - log p(z).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import base, registry

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# From df / 2 = 5 on, the log-normalizer uses its asymptotic series: the direct difference of
# two log-gamma values of size ~(df/2) log(df/2) loses 1e-4 absolute at df = 1e3 in float32.
_SERIES_FROM = 5.0


class StudentT(base.Distribution):
  """Student-t with location and scale.

  Args:
    df: degrees of freedom (tail index), > 0. Moments of order >= df are infinite; df -> inf
      gives the Gaussian N(loc, scale^2).
    loc: location (the median), any real.
    scale: scale, > 0.
  """

  param_names = ("df", "loc", "scale")
  positive = ("df", "scale")

  def __init__(self, df: ArrayLike, loc: ArrayLike = 0.0, scale: ArrayLike = 1.0):
    super().__init__(df, loc, scale)


def rsample(key: Array, dist: StudentT, sample_shape: tuple[int, ...] = ()) -> Array:
  shape = sample_shape + dist.batch_shape
  key_normal, key_gamma = jax.random.split(key)
  eps = jax.random.normal(key_normal, shape, dist.dtype)
  # g is drawn as log g: for df/2 << 1, g itself underflows to 0 (95% of draws at df = 1e-3),
  # while sqrt(df / (2 g)) = exp((log(df/2) - log g) / 2) stays finite far longer.
  log_g = jax.random.loggamma(key_gamma, jnp.broadcast_to(0.5 * dist.df, shape), shape, dist.dtype)
  return dist.loc + dist.scale * eps * jnp.exp(0.5 * (jnp.log(0.5 * dist.df) - log_g))


def _log_normalizer(df: Array) -> Array:
  """log Gamma((df+1)/2) - log Gamma(df/2) - log(pi df) / 2.

  For x = df/2 >= 5 this is -log(2 pi)/2 plus the Stirling series of
  log Gamma(x + 1/2) - log Gamma(x) - log(x)/2, sum over even n of
  (2^(1-n) - 2) B_n / (n (n-1) x^(n-1)) with B_n the Bernoulli numbers: -1/(8x) + 1/(192x^3)
  - 1/(640x^5) + 17/(14336x^7) - 31/(18432x^9) + 691/(180224x^11) - 5461/(425984x^13), whose
  truncation error at x = 5 is 2e-12.
  """
  x = 0.5 * df
  large = x >= _SERIES_FROM
  inv = 1 / jnp.where(large, x, _SERIES_FROM)
  inv2 = inv * inv
  series = 0.0
  for c in (-5461 / 425984, 691 / 180224, -31 / 18432, 17 / 14336, -1 / 640, 1 / 192, -1 / 8):
    series = c + inv2 * series  # Horner's rule in 1 / x^2, highest power first
  series = -_HALF_LOG_2PI + inv * series
  gammaln = jax.scipy.special.gammaln
  direct = gammaln(x + 0.5) - gammaln(x) - 0.5 * jnp.log(math.pi * df)
  return jnp.where(large, series, direct)


def _log1p_square_ratio(r: Array, s: Array) -> Array:
  """log(1 + (r / s)^2) for s > 0, finite where r / s or its square overflows float32."""
  big = jnp.abs(r) > s
  # |r| > s: 2 log|r/s| + log1p((s/r)^2) from logs, since r / s itself overflows for a tiny s.
  log_ratio = jnp.log(jnp.abs(jnp.where(big, r, s))) - jnp.log(s)
  large_form = 2 * log_ratio + jnp.log1p(jnp.exp(-2 * log_ratio))
  small_form = jnp.log1p(jnp.square(jnp.where(big, 0.0, r) / s))
  return jnp.where(big, large_form, small_form)


def log_prob(dist: StudentT, z: ArrayLike) -> Array:
  kernel = _log1p_square_ratio(z - dist.loc, dist.scale * jnp.sqrt(dist.df))
  return _log_normalizer(dist.df) - jnp.log(dist.scale) - 0.5 * (dist.df + 1) * kernel


def mean(dist: StudentT) -> Array:
  """loc for df > 1; for df <= 1, where E|z| diverges, ``inf`` (scipy.stats.t's convention).

  The mean then has no value at all (both tails diverge); ``inf`` marks it as not finite, as
  ``mean`` does for every family.
  """
  return jnp.where(dist.df > 1, dist.loc, jnp.inf)


def variance(dist: StudentT) -> Array:
  """scale^2 df / (df - 2) for df > 2, ``inf`` for 1 < df <= 2, ``nan`` for df <= 1.

  ``nan`` where the mean itself is undefined, as scipy.stats.t reports it.
  """
  finite = dist.df > 2
  df = jnp.where(finite, dist.df, 3.0)
  return jnp.where(finite,
                   jnp.square(dist.scale) * df / (df - 2), jnp.where(dist.df > 1, jnp.inf, jnp.nan))


INFO = registry.register_family(
    registry.FamilyInfo(
        name="student_t",
        cls=StudentT,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        # df >= 0.5 keeps every draw finite (module docstring). With the Pareto alpha's floor of 1e-3
        # instead, a freshly initialized encoder put some df near it and the first training step of
        # the tiny test config drew +-inf (nan loss).
        heads={
            "df": "softplus_0.5",
            "loc": "identity",
            "scale": "softplus"
        },
        # StudentT(5, 0, 1): tails heavier than N(0, 1) (kurtosis 9) with a finite variance (5/3),
        # so a posterior can be heavier- or lighter-tailed than the prior.
        standard_prior=lambda shape, df=5.0, loc=0.0, scale=1.0: StudentT(
            jnp.full(shape, df), jnp.full(shape, loc), jnp.full(shape, scale)),
    ))
