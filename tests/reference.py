"""Independent references for the latent families: scipy.stats distributions and quadrature.

``REFERENCES`` maps every registered family name to a builder of the scipy.stats distribution
with the same parameters; ``JOINT_REFERENCES`` does the same for the joint families' densities.
A family that has no independent reference is listed in ``NO_REFERENCE`` with the reason and
where it is checked instead. ``tests/test_registry.py`` fails for a registered family that is
in neither, so a new family is tested against a reference from the day it is registered.

Nothing here calls the code under test beyond reading a distribution's parameters and its
registered name.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import integrate, stats

import pareto_vae_jax as pvj


class GeneralizedParetoReference:
  """scipy's ``genpareto`` with the variance it reports as nan (xi >= 1/2) set to inf.

  The second moment diverges there, which is what this package reports; every other method
  is scipy's.
  """

  def __init__(self, scale, shape, loc):
    self._dist = stats.genpareto(c=shape, loc=loc, scale=scale)
    self._shape = np.asarray(shape)

  def __getattr__(self, name):
    return getattr(self._dist, name)

  def var(self):
    return np.where(self._shape >= 0.5, np.inf, self._dist.var())


class SymmetricParetoReference:
  """The Lomax reflected about ``loc`` with weight 1/2 a side, written with scipy's ``lomax``.

  scipy has no such distribution; every method below is the definition applied to
  ``stats.lomax``. The quantiles come from the Lomax tail on either side of the median, so
  that each tail keeps its precision.
  """

  def __init__(self, loc, alpha, scale):
    self.loc, self.alpha, self.scale = loc, alpha, scale
    self._lomax = stats.lomax(alpha, scale=scale)

  def logpdf(self, z):
    return np.log(0.5) + self._lomax.logpdf(np.abs(z - self.loc))

  def cdf(self, z):
    return 0.5 + 0.5 * np.sign(z - self.loc) * self._lomax.cdf(np.abs(z - self.loc))

  def ppf(self, u):
    u = np.asarray(u, np.float64)
    return self.loc + np.sign(u - 0.5) * self._lomax.isf(2 * np.minimum(u, 1 - u))

  def isf(self, v):
    v = np.asarray(v, np.float64)
    return self.loc - np.sign(v - 0.5) * self._lomax.isf(2 * np.minimum(v, 1 - v))

  def mean(self):
    # The integral of z converges only for alpha > 1; scipy's convention there is nan.
    return np.where(self.alpha > 1, self.loc, np.nan)

  def var(self):
    # E[(Z - loc)^2] is the Lomax's second moment, inf for alpha <= 2.
    return self._lomax.var() + np.square(self._lomax.mean())


def _gaussian(loc, scale):
  return stats.norm(loc=loc, scale=scale)


def _lognormal(loc, scale):
  return stats.lognorm(s=scale, scale=np.exp(loc))


def _pareto(alpha, scale):
  return stats.pareto(b=alpha, scale=scale)


def _inverse_gaussian(mu, lam):
  # scipy's invgauss(m, scale=s) has mean m * s and shape s.
  return stats.invgauss(mu=mu / lam, scale=lam)


def _student_t(df, loc, scale):
  return stats.t(df, loc=loc, scale=scale)


def _lomax(alpha, scale):
  return stats.lomax(alpha, scale=scale)


def _weibull(concentration, scale):
  return stats.weibull_min(concentration, scale=scale)


# Registered name -> builder from the distribution's parameters (float64, in registry order).
REFERENCES: dict[str, Callable] = {
    "gaussian": _gaussian,
    "lognormal": _lognormal,
    "pareto": _pareto,
    "inverse_gaussian": _inverse_gaussian,
    "student_t": _student_t,
    "lomax": _lomax,
    "weibull": _weibull,
    "generalized_pareto": GeneralizedParetoReference,
    "symmetric_pareto": SymmetricParetoReference,
}

# The law of log Z where it is a named scipy distribution. Working in log space keeps heavy
# tails (a Pareto with alpha = 0.05) from overflowing.
LOG_LAWS: dict[str, Callable] = {
    # log of a Pareto(alpha, x_m) is an x_m-shifted Exponential of rate alpha.
    "pareto": lambda alpha, scale: stats.expon(loc=np.log(scale), scale=1 / alpha),
    # log of a LogNormal is its normal.
    "lognormal": lambda loc, scale: stats.norm(loc=loc, scale=scale),
    # log of a Weibull(k, lam) is a Gumbel (minimum) with location log lam and scale 1 / k.
    "weibull": lambda k, scale: stats.gumbel_l(loc=np.log(scale), scale=1 / k),
}


def _full_cov_gaussian_log_density(dist, z):
  """Per example, scipy's multivariate normal with covariance L L^T."""
  loc = np.asarray(dist.loc, np.float64)
  tril = np.asarray(dist.scale_tril, np.float64)
  z = np.asarray(z, np.float64)
  out = np.empty(z.shape[:-1])
  for idx in np.ndindex(*loc.shape[:-1]):
    cov = tril[idx] @ tril[idx].T
    out[(..., *idx)] = stats.multivariate_normal(loc[idx], cov).logpdf(z[(..., *idx, slice(None))])
  return out


# Joint family name -> (dist, z [..., B, D]) -> log q(z) [..., B] in float64.
JOINT_REFERENCES: dict[str, Callable] = {
    "full_cov_gaussian": _full_cov_gaussian_log_density,
}

# Families without an independent reference: why, and what checks them instead.
NO_REFERENCE: dict[str, str] = {
    "planar": "no library ships planar flows; tests/test_flows.py checks log q against the "
              "slogdet of the autodiff Jacobian, normalization by quadrature and the "
              "reduction to a diagonal Gaussian",
    "iaf": "no library ships the gated IAF step; tests/test_flows.py checks log q against the "
           "slogdet of the autodiff Jacobian, the autoregressive structure of each step and "
           "normalization by quadrature",
}


def _params(dist) -> list[np.ndarray]:
  return [np.asarray(p, np.float64) for p in dist.params]


def scipy_dist(dist):
  """The scipy.stats frozen distribution equal to ``dist`` (float64 parameters)."""
  return REFERENCES[pvj.family_info(dist).name](*_params(dist))


def scipy_log_dist(dist):
  """The scipy.stats distribution of log Z where it is a named one (``LOG_LAWS``), else None."""
  law = LOG_LAWS.get(pvj.family_info(dist).name)
  return None if law is None else law(*_params(dist))


def expectation_quadrature(ref, f) -> float:
  """E[f(Z)] for a scalar reference distribution by quadrature over u in (0, 1).

  Substituting z = F^{-1}(u) turns the expectation into an integral over u, which stays
  well-conditioned for heavy tails; the upper half uses the inverse survival function so that
  u near 1 keeps its precision.
  """
  opts = dict(limit=400, epsabs=1e-11, epsrel=1e-10)
  lower, _ = integrate.quad(lambda u: f(ref.ppf(u)), 0.0, 0.5, **opts)
  upper, _ = integrate.quad(lambda v: f(ref.isf(v)), 0.0, 0.5, **opts)
  return lower + upper


def kl_quadrature(q, p) -> float:
  """KL(q || p) = E_q[log q(Z) - log p(Z)] by ``expectation_quadrature`` (scalar q and p).

  Where the law of log Z is a named scipy distribution the integral runs over log Z instead
  (KL is invariant under the bijection log).
  """
  sq, sp = scipy_log_dist(q), scipy_log_dist(p)
  if sq is None or sp is None:
    sq, sp = scipy_dist(q), scipy_dist(p)
  return expectation_quadrature(sq, lambda z: sq.logpdf(z) - sp.logpdf(z))


def elements(dist) -> list:
  """The scalar distributions of a distribution with batch shape ``[n]``, in order."""
  return [type(dist)(*(p[i] for p in dist.params)) for i in range(dist.batch_shape[0])]


def training_kl_estimate(q, p, n: int, key) -> tuple[np.ndarray, np.ndarray]:
  """(mean, standard error) over ``n`` examples of the trainer's single-draw KL estimate.

  As in ``train.forward`` where no closed form is registered: one draw per example from ``q``
  (in log space for positive families), scored as ``log q(z) - log p(z)``. ``q`` and ``p``
  broadcast to a common batch shape ``[D]``.
  """
  import jax
  import jax.numpy as jnp
  from pareto_vae_jax import vae
  shape = (n, *jnp.broadcast_shapes(q.batch_shape, p.batch_shape))
  q_n, p_n = (jax.tree.map(lambda v: jnp.broadcast_to(v, shape), d) for d in (q, p))

  @jax.jit
  def estimates(keys, q, p):
    r, in_log = vae.sample_latent(keys, q)
    return vae.latent_log_prob(q, r, in_log) - vae.latent_log_prob(p, r, in_log)

  values = np.asarray(estimates(jax.random.split(key, n), q_n, p_n), np.float64)
  return values.mean(0), values.std(0) / np.sqrt(n)


def _multivariate_t_log_density(dist, z):
  """Per example, scipy's multivariate t with shape matrix diag(scale^2) and df."""
  loc = np.asarray(dist.loc, np.float64)
  scale = np.asarray(dist.scale, np.float64)
  df = np.asarray(dist.df, np.float64)
  z = np.asarray(z, np.float64)
  out = np.empty(z.shape[:-1])
  for idx in np.ndindex(*loc.shape[:-1]):
    law = stats.multivariate_t(loc[idx], np.diag(scale[idx]**2), df=df[idx])
    out[(..., *idx)] = law.logpdf(z[(..., *idx, slice(None))])
  return out


JOINT_REFERENCES["multivariate_t"] = _multivariate_t_log_density
NO_REFERENCE["multivariate_symmetric_pareto"] = (
    "no library ships the multivariate symmetric Pareto (ParetoVAE's symPareto); "
    "tests/test_multivariate_heavy.py checks normalization by quadrature in 1 and 2 dimensions, "
    "D = 1 against scipy's Lomax reflected about loc, each coordinate's and the l1 radius's "
    "draws against their laws (scipy.stats.betaprime) and the moments")
