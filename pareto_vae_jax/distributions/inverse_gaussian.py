"""Inverse Gaussian latent IG(mean, shape) on (0, inf).

Density sqrt(lam / (2 pi z^3)) exp(-lam (z - mu)^2 / (2 mu^2 z)). Written throughout in
terms of phi = lam / mu and l = log(z / mu), where the density's exponent is
-2 phi sinh(l/2)^2 and the CDF's arguments are +-2 sqrt(phi) sinh/cosh(l/2): nothing then
overflows (exp(2 lam / mu) never appears alone) and nothing cancels.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

from pareto_vae_jax.distributions import base, registry
from pareto_vae_jax.distributions.special import erfcx, exp_exp1

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


class InverseGaussian(base.Distribution):
  """Inverse Gaussian (Wald).

  Args:
    mean: mu, > 0.
    shape: lambda, > 0. Variance is mu^3 / lambda.
  """

  param_names = ("mean", "shape")
  positive = ("mean", "shape")

  def __init__(self, mean: ArrayLike, shape: ArrayLike):
    super().__init__(mean, shape)


def _cdf_arguments(mu: Array, lam: Array, log_z: Array) -> tuple[Array, Array]:
  # a = sqrt(lam/z) (z/mu - 1) and b = sqrt(lam/z) (z/mu + 1), via z/mu = exp(l).
  half_l = 0.5 * (log_z - jnp.log(mu))
  root_phi = 2 * jnp.sqrt(lam / mu)
  return root_phi * jnp.sinh(half_l), root_phi * jnp.cosh(half_l)


def log_prob_log(dist: InverseGaussian, log_z: ArrayLike) -> Array:
  mu, lam = dist.mean, dist.shape
  a, _ = _cdf_arguments(mu, lam, log_z)
  # The study's density with lam (z - mu)^2 / (2 mu^2 z) = a^2 / 2.
  return 0.5 * jnp.log(lam) - _HALF_LOG_2PI - 1.5 * log_z - 0.5 * a * a


def log_prob(dist: InverseGaussian, z: ArrayLike) -> Array:
  positive = z > 0
  log_z = jnp.log(jnp.where(positive, z, 1.0))
  return jnp.where(positive, log_prob_log(dist, log_z), -jnp.inf)


def log_cdf(dist: InverseGaussian, z: ArrayLike) -> Array:
  """log P(Z <= z), computed in log space.

  F(z) = Phi(a) + exp(2 lam / mu) Phi(-b) (Chhikara & Folks, 1989); the second term is
  formed as exp(2 lam / mu + log Phi(-b)), which is <= 1 even where exp(2 lam / mu) overflows.

  Args:
    dist: the distribution.
    z: points, > 0 (``-inf`` is returned for z <= 0).

  Returns:
    log F(z), elementwise.
  """
  positive = z > 0
  log_z = jnp.log(jnp.where(positive, z, 1.0))
  a, b = _cdf_arguments(dist.mean, dist.shape, log_z)
  value = jnp.logaddexp(log_ndtr(a), 2 * dist.shape / dist.mean + log_ndtr(-b))
  return jnp.where(positive, value, -jnp.inf)


def _msh_log(mu: Array, lam: Array, y: Array, u: Array) -> Array:
  """log of the Michael-Schucany-Haas draw (the study, algorithm 3), without cancellation.

  The two roots of the MSH quadratic are mu e^{-c} and mu e^{c} (their product is mu^2) with
  c = log1p(w + sqrt(w (w + 2))), w = mu y / (2 lam); the study's
  mu + mu^2 y/(2 lam) - (mu / (2 lam)) sqrt(4 mu lam y + mu^2 y^2) is mu e^{-c}, but subtracts
  two nearly equal numbers when w is large. The small root is kept with probability
  mu / (mu + mu e^{-c}) = sigmoid(c).

  Differentiating this function through the branch gives a biased gradient (the branch
  probability depends on the parameters); ``_ig_log_sample`` replaces its derivative.
  """
  w = mu * y / (2 * lam)
  c = jnp.log1p(w + jnp.sqrt(w) * jnp.sqrt(w + 2))
  return jnp.log(mu) + jnp.where(u <= jax.nn.sigmoid(c), -c, c)


def _implicit_log_grads(mu: Array, lam: Array, log_z: Array) -> tuple[Array, Array]:
  """(d log z / d mu, d log z / d lam) by implicit reparameterization.

  dz/dtheta = -(dF/dtheta)(z) / f(z) (Figurnov et al., 2018). For the IG CDF the density
  terms of dF/dmu cancel (exp(2 lam/mu) phi(b) = phi(a)), leaving
    dF/dmu  = -(2 lam / mu^2) e^{2 lam/mu} Phi(-b),
    dF/dlam = -phi(a) / sqrt(lam z) + (2 / mu) e^{2 lam/mu} Phi(-b),
  and dividing by f(z) = sqrt(lam / z^3) phi(a) turns e^{2 lam/mu} Phi(-b) / f(z) into
  z sqrt(z / lam) R(b), with R the Mills ratio Phi(-b)/phi(b) = sqrt(pi/2) erfcx(b/sqrt 2):
    d log z / d mu  = (2 lam / mu^2) sqrt(z / lam) R(b),
    d log z / d lam = 1 / lam - (2 / mu) sqrt(z / lam) R(b).
  Checked against autodiff of ``log_cdf`` and against E[z] = mu, E[1/z] = 1/mu + 1/lam in the
  tests; mu d/dmu + lam d/dlam = 1 holds exactly, as the scaling cZ ~ IG(c mu, c lam) requires.
  """
  _, b = _cdf_arguments(mu, lam, log_z)
  mills = math.sqrt(math.pi / 2) * erfcx(b / math.sqrt(2))
  t = jnp.exp(0.5 * (log_z - jnp.log(lam))) * mills
  return 2 * lam / jnp.square(mu) * t, 1 / lam - 2 / mu * t


@jax.custom_jvp
def _ig_log_sample(mu: Array, lam: Array, y: Array, u: Array) -> Array:
  return _msh_log(mu, lam, y, u)


@_ig_log_sample.defjvp
def _ig_log_sample_jvp(primals, tangents):
  mu, lam, y, u = primals
  d_mu, d_lam, _, _ = tangents  # The noise (y, u) does not depend on the parameters.
  log_z = _msh_log(mu, lam, y, u)
  g_mu, g_lam = _implicit_log_grads(mu, lam, log_z)
  return log_z, g_mu * d_mu + g_lam * d_lam


def rsample_log(key: Array, dist: InverseGaussian, sample_shape: tuple[int, ...] = ()) -> Array:
  shape = sample_shape + dist.batch_shape
  key_normal, key_uniform = jax.random.split(key)
  y = jnp.square(jax.random.normal(key_normal, shape, dist.dtype))
  u = jax.random.uniform(key_uniform, shape, dist.dtype)
  mu = jnp.broadcast_to(dist.mean, shape)
  lam = jnp.broadcast_to(dist.shape, shape)
  return _ig_log_sample(mu, lam, y, u)


def rsample(key: Array, dist: InverseGaussian, sample_shape: tuple[int, ...] = ()) -> Array:
  return jnp.exp(rsample_log(key, dist, sample_shape))


def mean(dist: InverseGaussian) -> Array:
  return dist.mean


def mean_log(dist: InverseGaussian) -> Array:
  """E[log z] = log mu - exp(2 phi) E1(2 phi), phi = lam / mu, with E1 the exponential integral.

  That is log mu + exp(2 phi) Ei(-2 phi), from the IG's Laplace transform; it lies below
  log E[z] = log mu, as Jensen's inequality requires. exp(2 phi) E1(2 phi) is evaluated as one
  function (``special.exp_exp1``), finite (~1 / (2 phi)) where exp(2 phi) overflows.
  """
  return jnp.log(dist.mean) - exp_exp1(2 * dist.shape / dist.mean)


def variance(dist: InverseGaussian) -> Array:
  return dist.mean**3 / dist.shape


def kl_inverse_gaussian(mean_q: ArrayLike, shape_q: ArrayLike, mean_p: ArrayLike,
                        shape_p: ArrayLike) -> Array:
  """KL(IG(m1, l1) || IG(m2, l2)), elementwise.

  1/2 [log(l1/l2) + l2/l1 - 1] + l2 (m1 - m2)^2 / (2 m2^2 m1) (the study, section 2.3.1,
  after collecting its terms; checked by quadrature in tests/test_kl.py). The bracket is
  written as expm1(t) - t, t = log(l2/l1), so that it stays accurate when l1 ~ l2.
  """
  t = jnp.log(shape_p) - jnp.log(shape_q)
  d = (mean_q - mean_p) / mean_p
  return 0.5 * (jnp.expm1(t) - t) + shape_p * d * d / (2 * mean_q)


@registry.register_kl(InverseGaussian, InverseGaussian)
def _kl_ig_ig(q: InverseGaussian, p: InverseGaussian) -> Array:
  return kl_inverse_gaussian(q.mean, q.shape, p.mean, p.shape)


INFO = registry.register_family(
    registry.FamilyInfo(
        name="inverse_gaussian",
        cls=InverseGaussian,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        heads={
            "mean": "elu_plus_one",
            "shape": "elu_plus_one"
        },
        standard_prior=lambda shape: InverseGaussian(jnp.ones(shape), jnp.ones(shape)),
        rsample_log=rsample_log,
        mean_log=mean_log,
        log_prob_log=log_prob_log,
    ))
