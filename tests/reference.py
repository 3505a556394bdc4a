"""Independent references for the latent families: scipy.stats distributions and quadrature.

Nothing here imports the code under test beyond reading a distribution's parameters.
"""

from __future__ import annotations

import numpy as np
from scipy import integrate, stats

import pareto_vae_jax as pvj


def scipy_dist(dist):
  """The scipy.stats frozen distribution equal to ``dist`` (float64 parameters)."""
  params = [np.asarray(p, np.float64) for p in dist.params]
  if isinstance(dist, pvj.Gaussian):
    loc, scale = params
    return stats.norm(loc=loc, scale=scale)
  if isinstance(dist, pvj.LogNormal):
    loc, scale = params
    return stats.lognorm(s=scale, scale=np.exp(loc))
  if isinstance(dist, pvj.Pareto):
    alpha, scale = params
    return stats.pareto(b=alpha, scale=scale)
  if isinstance(dist, pvj.InverseGaussian):
    mu, lam = params
    # scipy's invgauss(m, scale=s) has mean m * s and shape s.
    return stats.invgauss(mu=mu / lam, scale=lam)
  raise TypeError(type(dist))


def scipy_log_dist(dist):
  """The scipy.stats distribution of log Z, for the families where it is a named one.

  log of a Pareto(alpha, x_m) is x_m-shifted Exponential(rate alpha); log of a LogNormal is
  its normal. Working in log space keeps heavy tails (alpha = 0.05) from overflowing.
  """
  params = [np.asarray(p, np.float64) for p in dist.params]
  if isinstance(dist, pvj.Pareto):
    alpha, scale = params
    return stats.expon(loc=np.log(scale), scale=1 / alpha)
  if isinstance(dist, pvj.LogNormal):
    loc, scale = params
    return stats.norm(loc=loc, scale=scale)
  return None


def kl_quadrature(q, p) -> float:
  """KL(q || p) = E_q[log q(Z) - log p(Z)] by adaptive quadrature in probability space.

  Substituting z = F_q^{-1}(u) turns the expectation into an integral over u in (0, 1), which
  stays well-conditioned for heavy tails; the upper half uses the inverse survival function
  so that u near 1 keeps its precision. Where the law of log Z is a named scipy distribution
  the integral runs over log Z instead (KL is invariant under the bijection log).
  """
  sq, sp = scipy_log_dist(q), scipy_log_dist(p)
  if sq is None or sp is None:
    sq, sp = scipy_dist(q), scipy_dist(p)

  def integrand(z):
    return sq.logpdf(z) - sp.logpdf(z)

  lower, _ = integrate.quad(lambda u: integrand(sq.ppf(u)), 0.0, 0.5, limit=400, epsabs=1e-11,
                            epsrel=1e-10)
  upper, _ = integrate.quad(lambda v: integrand(sq.isf(v)), 0.0, 0.5, limit=400, epsabs=1e-11,
                            epsrel=1e-10)
  return lower + upper


def training_kl_estimate(q, p, n: int, key) -> tuple[np.ndarray, np.ndarray]:
  """(mean, standard error) over ``n`` examples of the trainer's single-draw KL estimate.

  As in ``train.forward`` where no closed form is registered: one draw per example from ``q``
  (in log space for positive families), scored as ``log q(z) - log p(z)``. ``q`` and ``p``
  broadcast to a common batch shape ``[D]``.
  """
  import jax
  import jax.numpy as jnp
  from pareto_vae_jax import train
  shape = (n, *jnp.broadcast_shapes(q.batch_shape, p.batch_shape))
  q_n, p_n = (jax.tree.map(lambda v: jnp.broadcast_to(v, shape), d) for d in (q, p))

  @jax.jit
  def estimates(keys, q, p):
    r, in_log = train.sample_latent(keys, q)
    return train.latent_log_prob(q, r, in_log) - train.latent_log_prob(p, r, in_log)

  values = np.asarray(estimates(jax.random.split(key, n), q_n, p_n), np.float64)
  return values.mean(0), values.std(0) / np.sqrt(n)
