"""Generalized Pareto latent GPD(scale sigma, shape xi, loc mu).

Survival function (1 + xi y)^(-1/xi) with y = (z - mu) / sigma, on [mu, inf) for xi >= 0 and on
[mu, mu - sigma / xi) for xi < 0; xi = 0 is its limit exp(-y), the exponential. It contains the
exponential (xi = 0), the Lomax (xi > 0, mu = 0: Lomax(1 / xi, sigma / xi)) and the Pareto type I
(xi > 0, mu = sigma / xi: Pareto(1 / xi, sigma / xi)).

Everything goes through the standard exponential variable E = log1p(xi y) / xi (the survival
function is exp(-E)), and the sampler is its inverse y = expm1(xi E) / xi = E exp(g(xi E)) with
g(x) = log(expm1(x) / x). Both forms are 0/0 at xi = 0; ``_log_expm1c`` evaluates g smoothly
through 0, so the exponential is a continuous limit with finite gradients in xi.

As a latent (``latent_fixed``) loc is 0 and the shape head is a softplus: xi > 1e-4, the
heavy-tailed regime, support (0, inf) with survival ~ z^(-1/xi). With loc >= 0 the family is
positive and has log-space functions; ``mean_log`` has a closed form at loc = 0 only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma

from pareto_vae_jax.distributions import base, registry

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class GeneralizedPareto(base.Distribution):
  """Generalized Pareto distribution.

  Args:
    scale: sigma, > 0; the density at loc is 1 / sigma.
    shape: xi, any real. The tail index is 1 / xi for xi > 0 (heavier as xi grows); xi < 0
      bounds the support above by loc - scale / shape.
    loc: mu, the lower end of the support, any real.
  """

  param_names = ("scale", "shape", "loc")
  positive = ("scale",)

  def __init__(self, scale: ArrayLike, shape: ArrayLike, loc: ArrayLike = 0.0):
    super().__init__(scale, shape, loc)


# Below this |x| (by itemsize: float32, float64) g is summed as a series, whose truncation
# (the next term, u^10 / 467775) is < 2.1e-9 and < 2e-19 there; above it, the closed form's
# cancellation costs < 4e-7 relative in g and g' (float32, measured against float64).
_SERIES_BELOW = {4: 1.0, 8: 0.1}


def _log_expm1c(x: Array) -> Array:
  """g(x) = log(expm1(x) / x), for every real x, smooth through g(0) = 0.

  g(x) = x / 2 + log(sinh(u) / u) with u = x / 2, and log(sinh(u) / u) = u^2/6 - u^4/180 +
  u^6/2835 - u^8/37800 + ... (coefficients 2^2n B_2n / (2n (2n)!)). Away from 0 the closed form
  max(x, 0) + log(-expm1(-|x|)) - log|x| never overflows (g(x) ~ x - log x for large x).
  """
  small = jnp.abs(x) < _SERIES_BELOW.get(jnp.dtype(x.dtype).itemsize, 1.0)
  s = jnp.square(0.5 * jnp.where(small, x, 0.0))
  series = 0.5 * x + s * (1 / 6 + s * (-1 / 180 + s * (1 / 2835 - s / 37800)))
  a = jnp.abs(jnp.where(small, 1.0, x))
  closed = jnp.maximum(x, 0.0) + jnp.log(-jnp.expm1(-a)) - jnp.log(a)
  return jnp.where(small, series, closed)


def _log_add(log_x: Array, c: Array) -> Array:
  """log(exp(log_x) + c) for real c without forming exp(log_x), which a heavy tail overflows.

  nan where the sum is negative, -inf where it is 0; exact (with its gradient) at c = 0.
  """
  near = jnp.abs(c) <= jnp.exp(log_x)  # the comparison is right even where exp overflows
  # log x + log1p(c / x) with |c / x| <= 1. exp(-log x) is capped at e^80: beyond it only
  # |c| < e^-80 is near, and c = 0 must stay exactly 0 (not 0 * inf).
  ratio = jnp.where(near, c, 0.0) * jnp.exp(jnp.minimum(-log_x, 80.0))
  value_near = log_x + jnp.log1p(ratio)
  # log c + log1p(x / c) with x < |c|: x is finite here; nan for c < 0 (then x + c < 0).
  c_far = jnp.where(near, 1.0, c)
  value_far = jnp.log(c_far) + jnp.log1p(jnp.exp(jnp.where(near, 0.0, log_x)) / c_far)
  return jnp.where(near, value_near, value_far)


def _standard_exponential(key: Array, shape: tuple[int, ...], dtype) -> Array:
  # u = 0 (probability 2^-23 in float32) gives E = 0, hence z = loc and log z = -inf at loc = 0,
  # which a decoder fed log z cannot take. The floor moves that draw by sigma * 1e-38.
  return jnp.maximum(jax.random.exponential(key, shape, dtype), jnp.finfo(dtype).tiny)


def _log_standardized_draw(key: Array, dist: GeneralizedPareto, sample_shape: tuple[int,
                                                                                    ...]) -> Array:
  # log y = log E + g(xi E), the log of y = expm1(xi E) / xi: finite where y overflows.
  e = _standard_exponential(key, sample_shape + dist.batch_shape, dist.dtype)
  return jnp.log(e) + _log_expm1c(dist.shape * e)


def rsample(key: Array, dist: GeneralizedPareto, sample_shape: tuple[int, ...] = ()) -> Array:
  # Inverse CDF: z = mu + sigma y. y overflows float32 once xi E > 88.7; E <= 15.94, so every
  # draw is finite for xi < 5.5 (rsample_log has no such limit).
  return dist.loc + dist.scale * jnp.exp(_log_standardized_draw(key, dist, sample_shape))


def rsample_log(key: Array, dist: GeneralizedPareto, sample_shape: tuple[int, ...] = ()) -> Array:
  # log z = log(sigma y + mu), exactly log(sigma) + log y at loc = 0; nan where z < 0 (loc < 0).
  return _log_add(jnp.log(dist.scale) + _log_standardized_draw(key, dist, sample_shape), dist.loc)


def _exponential_variable(xi: Array, y: Array, log_y: Array) -> Array:
  """E = log1p(xi y) / xi at y >= 0 with 1 + xi y > 0 (y finite; log_y read where xi y > 1)."""
  # t = log1p(xi y): from log y where xi y > 1, so that a y too large for float still works.
  large = xi * y > 1
  t_large = jax.nn.softplus(jnp.log(jnp.where(large, xi, 1.0)) + jnp.where(large, log_y, 0.0))
  t = jnp.where(large, t_large, jnp.log1p(jnp.where(large, 0.0, xi) * y))
  # t / xi is 0/0 at xi = 0 and its derivative cancels for small t; there E = y exp(-g(t)),
  # because y = expm1(t) / xi.
  near = jnp.abs(t) < 1
  e_near = y * jnp.exp(-_log_expm1c(jnp.where(near, t, 0.0)))
  return jnp.where(near, e_near, t / jnp.where(near, 1.0, xi))


def _log_prob_standardized(dist: GeneralizedPareto, y: Array, log_y: Array, above: Array) -> Array:
  # log f = -log sigma - (1/xi + 1) log1p(xi y) = -log sigma - (1 + xi) E (the derivative of the
  # survival function (1 + xi y)^(-1/xi)); the support is open at its upper end for xi < 0.
  inside = above & (dist.shape * y > -1)
  e = _exponential_variable(dist.shape, jnp.where(inside, y, 0.0), jnp.where(inside, log_y, 0.0))
  return jnp.where(inside, -jnp.log(dist.scale) - (1 + dist.shape) * e, -jnp.inf)


def log_prob(dist: GeneralizedPareto, z: ArrayLike) -> Array:
  y = (z - dist.loc) / dist.scale
  return _log_prob_standardized(dist, y, jnp.log(jnp.where(y > 0, y, 1.0)), y >= 0)


def log_prob_log(dist: GeneralizedPareto, log_z: ArrayLike) -> Array:
  # log y = log(z - mu) - log sigma without forming z. y itself is capped below the float
  # maximum: it is read only where xi y <= 1, and t and E come from log y beyond.
  log_y = _log_add(log_z, -dist.loc) - jnp.log(dist.scale)
  cap = float(np.log(np.finfo(log_y.dtype).max)) - 1
  y = jnp.exp(jnp.minimum(log_y, cap))
  return _log_prob_standardized(dist, y, log_y, jnp.exp(log_z) >= dist.loc)


def mean(dist: GeneralizedPareto) -> Array:
  # mu + sigma / (1 - xi), finite only for xi < 1.
  finite = dist.shape < 1
  return jnp.where(finite, dist.loc + dist.scale / (1 - jnp.where(finite, dist.shape, 0.0)),
                   jnp.inf)


def variance(dist: GeneralizedPareto) -> Array:
  # sigma^2 / ((1 - xi)^2 (1 - 2 xi)), finite only for xi < 1/2.
  finite = dist.shape < 0.5
  xi = jnp.where(finite, dist.shape, 0.0)
  return jnp.where(finite, jnp.square(dist.scale / (1 - xi)) / (1 - 2 * xi), jnp.inf)


def mean_log(dist: GeneralizedPareto) -> Array:
  """E[log z] at loc = 0 (the latent): log sigma - gamma + xi / 2 + h(|xi|); nan where loc != 0.

  log z = log sigma + log E + g(xi E) with E[log E] = -gamma. Integrating over u = exp(-E),
  E[log(expm1(xi E))] = xi - psi(1 + 1/xi) - gamma for xi > 0 (a digamma series), which gives
  E[g(xi E)] = -log xi - psi(1 / xi), and for xi < 0 -log|xi| - psi(1 + 1/|xi|): both are
  xi / 2 + h(|xi|) with h(a) = -log a - psi(1 / a) - a / 2. Near 0, h is digamma's asymptotic
  series a^2/12 - a^4/120 + a^6/252 - a^8/240 (next term a^10/132). At loc != 0 E[log z] has
  no closed form. Checked by quadrature in tests/test_log_prob.py.
  """
  xi = dist.shape
  small = jnp.abs(xi) < 0.1
  a = jnp.abs(jnp.where(small, 1.0, xi))
  s = jnp.square(jnp.where(small, xi, 0.0))
  h = jnp.where(small, s * (1 / 12 + s * (-1 / 120 + s * (1 / 252 - s / 240))),
                -jnp.log(a) - digamma(1 / a) - 0.5 * a)
  value = jnp.log(dist.scale) - np.euler_gamma + 0.5 * xi + h
  return jnp.where(dist.loc == 0, value, jnp.nan)


def standard_prior(batch_shape: base.Shape,
                   *,
                   scale: float = 1.0,
                   shape: float = 0.5,
                   loc: float = 0.0) -> GeneralizedPareto:
  """GPD(1, 1/2, 0) by default: the Lomax(2, 2), with tail index 1 / xi = 2.

  2 is the heaviest integer tail index with a finite mean (here 2); the variance is infinite.
  The density at 0 is 1, as for Exp(1), the xi -> 0 limit. ``loc`` is accepted because the
  trainer passes ``latent_fixed`` to the prior as well.
  """
  return GeneralizedPareto(jnp.full(batch_shape, scale), jnp.full(batch_shape, shape),
                           jnp.full(batch_shape, loc))


# No KL is registered: KL(GPD || GPD) needs E_q[log1p(xi_p (z - mu_p) / sigma_p)], which has a
# closed form only on special subsets (q = p; both xi = 0; loc 0 with equal sigma / xi, two Lomax
# sharing a scale), not for every pair a registration would cover. The trainer falls back to its
# Monte Carlo estimate.
INFO = registry.register_family(
    registry.FamilyInfo(
        name="generalized_pareto",
        cls=GeneralizedPareto,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        heads={
            "scale": "softplus",
            "shape": "softplus",
            "loc": "identity"
        },
        standard_prior=standard_prior,
        rsample_log=rsample_log,
        log_prob_log=log_prob_log,
        mean_log=mean_log,
        latent_fixed={"loc": 0.0},
        decode_log=True,
    ))
