"""Symmetric Pareto latent: density alpha / (2 s) (1 + |z| / s)^-(alpha + 1) on the real line.

The Lomax (Pareto type II) with shape alpha and scale s, reflected about 0 with weight 1/2 on
each side. It is the two-sided heavy tail of the family: the density is continuous and finite
at 0 (alpha / (2 s)), tails fall as |z|^-(alpha + 1), and it is reparameterizable, because
log(1 + |Z| / s) is Exponential(alpha): z = sign * s * expm1(E / alpha) with E ~ Exp(1) and a
fair sign, which carries no parameter and so needs no gradient.

Mean: 0 for alpha > 1, undefined (nan) for alpha <= 1, where E|Z| = s / (alpha - 1) diverges.
Variance: E[Z^2] = E[|Z|^2] = 2 s^2 / ((alpha - 1)(alpha - 2)) for alpha > 2 (the Lomax's
variance s^2 alpha / ((alpha - 1)^2 (alpha - 2)) plus its squared mean), inf otherwise.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax.distributions import base
from pareto_vae_jax.distributions.pareto import kl_pareto

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


class SymmetricPareto(base.Distribution):
  """Symmetric (two-sided) Pareto: a Lomax reflected about 0.

  Args:
    alpha: tail index, > 0. Smaller is heavier-tailed.
    scale: s, > 0; the density at 0 is alpha / (2 s).
  """

  param_names = ("alpha", "scale")
  positive = ("alpha", "scale")

  def __init__(self, alpha: ArrayLike, scale: ArrayLike = 1.0):
    super().__init__(alpha, scale)


def rsample(key: Array, dist: SymmetricPareto, sample_shape: tuple[int, ...] = ()) -> Array:
  # |z| = s expm1(E / alpha) inverts P(|Z| > t) = (1 + t / s)^-alpha. It overflows float32 once
  # E / alpha > 88.7; E <= 15.94, so every draw is finite for alpha >= 0.18.
  shape = sample_shape + dist.batch_shape
  key_e, key_sign = jax.random.split(key)
  e = jax.random.exponential(key_e, shape, dist.dtype)
  sign = jax.random.rademacher(key_sign, shape, dist.dtype)
  return sign * dist.scale * jnp.expm1(e / dist.alpha)


def log_prob(dist: SymmetricPareto, z: ArrayLike) -> Array:
  # log(alpha / (2 s)) - (alpha + 1) log1p(|z| / s): half the Lomax density at |z|.
  return (jnp.log(dist.alpha) - math.log(2) - jnp.log(dist.scale)
          - (dist.alpha + 1) * jnp.log1p(jnp.abs(z) / dist.scale))


def mean(dist: SymmetricPareto) -> Array:
  # 0 by symmetry where E|Z| = s / (alpha - 1) is finite; nan (undefined, not inf) otherwise.
  return jnp.where(dist.alpha > 1, jnp.zeros_like(dist.alpha), jnp.nan)


def variance(dist: SymmetricPareto) -> Array:
  # E[Z^2] = 2 s^2 / ((alpha - 1)(alpha - 2)) (the module docstring), finite only for alpha > 2.
  finite = dist.alpha > 2
  a = jnp.where(finite, dist.alpha, 3.0)
  return jnp.where(finite, 2 * jnp.square(dist.scale) / ((a - 1) * (a - 2)), jnp.inf)


def kl_symmetric_pareto(alpha_q: ArrayLike, alpha_p: ArrayLike) -> Array:
  """KL(SymmetricPareto(alpha_q, s) || SymmetricPareto(alpha_p, s)) for a shared scale s.

  log(a_q / a_p) + a_p / a_q - 1, whatever s is. Both densities are even, so the KL is that of
  |Z|, and through the bijection |z| -> log(1 + |z| / s) that of Exp(a_q) to Exp(a_p): the
  shared-scale Pareto KL, whose expm1 form ``kl_pareto`` evaluates. Checked by quadrature and
  Monte Carlo in tests/test_new_families_b.py.

  Args:
    alpha_q: tail index of q, > 0.
    alpha_p: tail index of p, > 0.

  Returns:
    The broadcast elementwise KL, ``>= 0``.

  Example:
    >>> from pareto_vae_jax.distributions.symmetric_pareto import kl_symmetric_pareto
    >>> float(kl_symmetric_pareto(2.0, 2.0))
    0.0
  """
  return kl_pareto(alpha_q, alpha_p)


@base.register_kl(SymmetricPareto, SymmetricPareto)
def _kl_symmetric_pareto_pair(q: SymmetricPareto, p: SymmetricPareto) -> Array:
  # With different scales E_q[log1p(|z| / s_p)] has no closed form. A latent keeps the scale
  # fixed and shared (``latent_fixed``); elsewhere this raises on concrete values and, under a
  # transformation (which cannot raise), returns nan where the scales differ.
  same = q.scale == p.scale
  if base._is_concrete(same) and not np.asarray(same).all():
    raise base.KLNotImplementedError(
        "KL(SymmetricPareto || SymmetricPareto) has a closed form only for equal scales; got "
        f"scales {np.asarray(q.scale).ravel()[:3]} and {np.asarray(p.scale).ravel()[:3]}. Share "
        "the scale (the latent fixes it) or estimate the KL by Monte Carlo.")
  return jnp.where(same, kl_symmetric_pareto(q.alpha, p.alpha), jnp.nan)


def standard_prior(batch_shape: base.Shape, *, alpha: float = 2.0,
                   scale: float = 1.0) -> SymmetricPareto:
  """SymmetricPareto(2, 1) by default: tail index 2 (mean 0, infinite variance), E|z| = 1.

  The same tail index as the Generalized Pareto's standard prior, and like it density 1 at 0.
  """
  return SymmetricPareto(jnp.full(batch_shape, alpha), jnp.full(batch_shape, scale))


INFO = base.register_family(base.FamilyInfo(
    name="symmetric_pareto",
    cls=SymmetricPareto,
    rsample=rsample,
    log_prob=log_prob,
    mean=mean,
    variance=variance,
    heads={"alpha": "softplus_1e-3", "scale": "softplus_1e-3"},
    standard_prior=standard_prior,
    latent_fixed={"scale": 1.0},
))
