"""The parameter values the registry-parametrized tests use, one entry per factorized family.

The property tests in test_log_prob.py, test_sampling.py, test_kl.py, test_mc_kl.py,
test_gradients.py, test_transforms.py and test_extremes.py run over
``pareto_vae_jax.family_names()`` and read their inputs from ``CASES[name]``; their references
come from tests/reference.py. tests/test_registry.py fails for a registered family without an
entry here, so a new family is tested by every property test as soon as it is given one.
Family-specific tests live in tests/test_<family>.py.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np
from scipy import special

import pareto_vae_jax as pvj


@dataclasses.dataclass(frozen=True)
class Gradient:
  """E[f(z)] known in closed form: its derivative per parameter (None: not checked, where the
  per-draw derivative has infinite variance), estimated from ``n`` draws of ``sampler``."""

  params: tuple[float, ...]
  f: Callable
  grads: Callable[..., list]
  n: int = 200_000
  sampler: Callable = pvj.rsample


@dataclasses.dataclass(frozen=True)
class Cases:
  """Inputs of the registry-parametrized tests for one family.

  Attributes:
    positive: support in (0, inf) (as a latent): the family has rsample_log, log_prob_log and
      mean_log, and the trainer draws it in log space.
    standard_prior: the documented parameters of ``--prior=standard`` (README, "Latent
      families").
    grid: batch shape [n]; log_prob against the reference on a quantile grid.
    moments: batch shape [n]; mean and variance against the reference, inf and nan included.
    outside: a distribution and points outside its support, where log_prob is -inf.
    singles: scalar distributions whose draws are tested against the reference CDF.
    batch: batch shape [3]; draws and densities under jit and vmap.
    grad_point: a scalar distribution at which every parameter gets a gradient.
    gradients: pathwise gradients against derivatives of known expectations.
    trainer_kl: (q, p, n): the trainer's single-draw KL estimate from n draws against the
      closed form or, where none is registered, quadrature.
    ranges: per parameter (low, high, log-uniform?) over which draws, densities and their
      gradients are finite in float32 (the documented range).
    range_examples: how many parameter values hypothesis tries in that range.
    kl_pairs: parameters (q, p) of closed-form KLs checked against quadrature (empty without
      a closed form).
    kl_function: the closed form on plain arrays, ``f(*q_params, *p_params)``, if public.
    kl_tolerance: (rtol, atol) of the closed form against quadrature.
    log_grid: batch shape [n] with a positive support (default: grid); log_prob_log against
      the reference at exp(log z).
    mean_log: (batch [n], rtol, atol): E[log z] against quadrature (positive families).
    jit_rtol: how far a draw under jit may move from the eager one, relative.
  """

  positive: bool
  standard_prior: tuple[float, ...]
  grid: Any
  moments: Any
  outside: tuple[Any, tuple[float, ...]]
  singles: tuple[Any, ...]
  batch: Any
  grad_point: Any
  gradients: tuple[Gradient, ...]
  trainer_kl: tuple[Any, Any, int]
  ranges: dict[str, tuple[float, float, bool]]
  range_examples: int = 20
  kl_pairs: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = ()
  kl_function: Callable | None = None
  kl_tolerance: tuple[float, float] = (2e-5, 1e-5)
  log_grid: Any = None
  mean_log: tuple[Any, float, float] | None = None
  jit_rtol: float = 1e-6


def _student_t_abs_moment(df, scale):
  # E|z - loc| = scale sqrt(df) Gamma((df-1)/2) / (sqrt(pi) Gamma(df/2)), df > 1.
  return scale * np.sqrt(df) * np.exp(special.gammaln((df - 1) / 2) - special.gammaln(df / 2)
                                      ) / np.sqrt(np.pi)


def _gpd_d_mean_log_d_xi(xi):
  # d/dxi of E[log z] - log sigma + gamma = -log xi - psi(1 / xi), for xi > 0 (scipy, float64).
  return -1 / xi + special.polygamma(1, 1 / xi) / xi ** 2


def _a(*values):
  return jnp.array(values, jnp.float32)


_LOCS = (-3.0, 0.0, 5.0)
_SCALES = (0.05, 1.0, 10.0)
# Normal (and LogNormal) pairs: locations in both orders, scales from 0.05 to 10.
_NORMAL_PAIRS = tuple(((m1, s1), (m2, s2)) for m1, s1, m2, s2
                      in itertools.product(_LOCS[:2], _SCALES, _LOCS[1:], _SCALES))
_PARETO_ALPHAS = (0.05, 0.5, 1.0, 3.0, 50.0)
# (scale_q, scale_p) with scale_q >= scale_p: shared, close, far apart.
_PARETO_SCALES = ((1.0, 1.0), (2.0, 1.0), (1.5, 0.3), (100.0, 1.0))
_IG_PAIRS = [((m1, l1), (m2, l2)) for m1, l1, m2, l2
             in itertools.product((0.05, 1.0, 20.0), (0.1, 1.0, 50.0), (0.05, 1.0, 20.0),
                                  (0.1, 1.0, 50.0)) if (m1, l1) != (m2, l2)]
_WEIBULL_PAIRS = [((k1, l1), (k2, l2)) for k1, l1, k2, l2
                  in itertools.product((0.5, 1.0, 2.5, 8.0), (0.5, 3.0), (0.5, 1.0, 2.5, 8.0),
                                       (0.5, 3.0))]
_GPD_MEAN_LOG = ((1.0, -0.7), (2.0, -0.1001), (1.0, -0.0999), (0.5, -1e-6), (1.0, 0.0),
                 (3.0, 1e-6), (1.0, 0.05), (1.0, 0.0999), (1.0, 0.1001), (0.2, 0.6), (1.0, 3.0))
_GPD_MOMENT_XI = (-0.5, 0.0, 0.3, 0.49, 0.5, 0.7, 1.0, 1.5)

CASES: dict[str, Cases] = {
    "gaussian": Cases(
        positive=False,
        standard_prior=(0.0, 1.0),
        grid=pvj.Gaussian(_a(-2.0, 0.0, 3.0), _a(0.1, 1.0, 5.0)),
        moments=pvj.Gaussian(_a(-2.0, 0.0, 3.0), _a(0.1, 1.0, 5.0)),
        outside=(pvj.Gaussian(0.0, 1.0), (-np.inf, np.inf)),
        singles=(pvj.Gaussian(-1.0, 3.0),),
        batch=pvj.Gaussian(_a(-1.0, 0.0, 2.0), _a(0.5, 1.0, 3.0)),
        grad_point=pvj.Gaussian(0.3, 1.2),
        gradients=(Gradient((0.7, 1.3), jnp.square, lambda m, s: [2 * m, 2 * s]),),
        trainer_kl=(pvj.Gaussian(_a(0.3, -1.0, 0.5), _a(0.5, 2.0, 0.3)), pvj.Gaussian(0.0, 1.0),
                    200_000),
        ranges={"loc": (-30.0, 30.0, False), "scale": (1e-4, 30.0, True)},
        range_examples=40,
        kl_pairs=_NORMAL_PAIRS,
        kl_function=pvj.kl_normal,
    ),
    "lognormal": Cases(
        positive=True,
        standard_prior=(0.0, 1.0),
        grid=pvj.LogNormal(_a(-2.0, 0.0, 3.0), _a(0.1, 1.0, 2.5)),
        moments=pvj.LogNormal(_a(-2.0, 0.0, 3.0), _a(0.1, 1.0, 2.5)),
        outside=(pvj.LogNormal(_a(-2.0, 0.0, 3.0), _a(0.1, 1.0, 2.5)), (-1.0, 0.0)),
        singles=(pvj.LogNormal(0.5, 0.4), pvj.LogNormal(-2.0, 2.0)),
        batch=pvj.LogNormal(_a(-1.0, 0.0, 2.0), _a(0.5, 1.0, 3.0)),
        grad_point=pvj.LogNormal(0.3, 1.2),
        gradients=(Gradient((0.2, 0.5), lambda z: z, lambda m, s: [
            np.exp(m + s * s / 2), s * np.exp(m + s * s / 2)]),),
        trainer_kl=(pvj.LogNormal(_a(0.3, -1.0, 1.0), _a(0.5, 2.0, 2.0)),
                    pvj.LogNormal(_a(0.0, 0.0, -1.0), _a(1.0, 1.0, 0.5)), 200_000),
        ranges={"loc": (-30.0, 30.0, False), "scale": (1e-4, 30.0, True)},
        range_examples=40,
        kl_pairs=_NORMAL_PAIRS,
        mean_log=(pvj.LogNormal(_a(-2.0, 0.0, 3.0), _a(0.1, 1.0, 2.5)), 1e-5, 1e-5),
        jit_rtol=1e-5,  # z = exp(log z): XLA's fused exp differs from eager's by a few ulp
    ),
    "pareto": Cases(
        positive=True,
        standard_prior=(1.0, 1.0),
        grid=pvj.Pareto(_a(0.05, 0.8, 1.5, 2.5, 40.0), _a(1.0, 0.2, 3.0, 1.0, 10.0)),
        moments=pvj.Pareto(_a(0.05, 0.8, 1.5, 2.5, 40.0), _a(1.0, 0.2, 3.0, 1.0, 10.0)),
        outside=(pvj.Pareto(_a(0.05, 0.8, 1.5, 2.5, 40.0), _a(1.0, 0.2, 3.0, 1.0, 10.0)),
                 (-1.0, 0.0)),
        singles=(pvj.Pareto(0.3, 1.0), pvj.Pareto(2.5, 0.01), pvj.Pareto(40.0, 5.0)),
        batch=pvj.Pareto(_a(0.3, 2.0, 50.0), _a(0.5, 1.0, 3.0)),
        grad_point=pvj.Pareto(1.3, 1.2),
        gradients=(
            # The guide's lemma 3.2.2: E[log z] = log x_m + 1/alpha.
            Gradient((0.4, 2.0), jnp.log, lambda a, x: [-1 / a ** 2, 1 / x]),
            Gradient((6.0, 1.5), lambda z: z, lambda a, x: [-x / (a - 1) ** 2, a / (a - 1)]),
        ),
        # Drawn and scored in log space: the Jacobian of z -> log z cancels in log q - log p.
        # The last two have different scales, x_q > x_p.
        trainer_kl=(pvj.Pareto(_a(0.7, 3.0, 0.5, 3.0), _a(1.0, 1.0, 1.0, 2.0)),
                    pvj.Pareto(_a(1.0, 1.0, 2.0, 0.7), _a(1.0, 1.0, 1.0, 0.5)), 200_000),
        ranges={"alpha": (1e-3, 1e3, True), "scale": (1e-3, 1e3, True)},
        range_examples=40,
        kl_pairs=tuple(((a_q, s_q), (a_p, s_p)) for a_q, a_p in
                       itertools.product(_PARETO_ALPHAS, _PARETO_ALPHAS)
                       for s_q, s_p in _PARETO_SCALES),
        # kl_pareto takes both shapes first, then both scales.
        kl_function=lambda a_q, s_q, a_p, s_p: pvj.kl_pareto(a_q, a_p, s_q, s_p),
        mean_log=(pvj.Pareto(_a(0.05, 0.8, 1.5, 2.5, 40.0), _a(1.0, 0.2, 3.0, 1.0, 10.0)), 1e-5,
                  1e-5),
        jit_rtol=1e-5,  # z = exp(log z): XLA's fused exp differs from eager's by a few ulp
    ),
    "inverse_gaussian": Cases(
        positive=True,
        standard_prior=(1.0, 1.0),
        grid=pvj.InverseGaussian(_a(0.05, 1.0, 3.0, 20.0), _a(0.2, 1.0, 50.0, 3.0)),
        moments=pvj.InverseGaussian(_a(0.05, 1.0, 3.0, 20.0), _a(0.2, 1.0, 50.0, 3.0)),
        outside=(pvj.InverseGaussian(_a(0.05, 1.0, 3.0, 20.0), _a(0.2, 1.0, 50.0, 3.0)),
                 (-1.0, 0.0)),
        singles=(pvj.InverseGaussian(1.0, 1.0),
                 pvj.InverseGaussian(3.0, 0.2),    # mu/lam large: the large root dominates
                 pvj.InverseGaussian(0.2, 30.0)),  # nearly Gaussian
        batch=pvj.InverseGaussian(_a(0.3, 2.0, 50.0), _a(0.5, 1.0, 3.0)),
        grad_point=pvj.InverseGaussian(0.3, 1.2),
        gradients=(
            Gradient((1.5, 0.8), lambda z: z, lambda m, l: [1.0, 0.0]),
            Gradient((1.5, 0.8), lambda z: 1 / z, lambda m, l: [-1 / m ** 2, -1 / l ** 2]),
            Gradient((0.3, 9.0), lambda z: 1 / z, lambda m, l: [-1 / m ** 2, -1 / l ** 2]),
        ),
        trainer_kl=(pvj.InverseGaussian(_a(0.5, 2.0, 2.0, 0.3), _a(1.0, 4.0, 0.5, 5.0)),
                    pvj.InverseGaussian(_a(1.0, 1.0, 1.0, 1.0), _a(1.0, 1.0, 1.0, 2.0)),
                    200_000),
        ranges={"mean": (1e-3, 1e3, True), "shape": (1e-3, 1e3, True)},
        range_examples=40,
        kl_pairs=tuple(_IG_PAIRS[::3] + [((1.0, 1.0), (1.0, 1.0))]),
        kl_function=pvj.kl_inverse_gaussian,
        kl_tolerance=(5e-5, 1e-5),
        mean_log=(pvj.InverseGaussian(_a(0.05, 1.0, 3.0, 20.0), _a(0.2, 1.0, 50.0, 3.0)), 1e-5,
                  1e-5),
    ),
    "student_t": Cases(
        positive=False,
        standard_prior=(5.0, 0.0, 1.0),
        grid=pvj.StudentT(_a(0.3, 1.0, 2.5, 7.0, 30.0, 1e4), _a(-2.0, 0.0, 3.0, 0.5, -1.0, 10.0),
                          _a(0.1, 1.0, 5.0, 2.0, 0.3, 1.0)),
        moments=pvj.StudentT(_a(0.5, 1.0, 1.5, 2.0, 2.5, 30.0), _a(1.0, -2.0, 3.0, 0.5, -1.0, 4.0),
                             _a(2.0, 1.0, 0.5, 3.0, 1.5, 0.7)),
        outside=(pvj.StudentT(0.5, 0.0, 1.0), (-np.inf, np.inf)),
        singles=(pvj.StudentT(0.7, 1.0, 2.0), pvj.StudentT(3.0, -1.0, 0.5),
                 pvj.StudentT(30.0, 0.0, 1.0)),
        batch=pvj.StudentT(_a(0.8, 3.0, 40.0), _a(-1.0, 0.0, 2.0), _a(0.5, 1.0, 3.0)),
        grad_point=pvj.StudentT(2.0, 0.3, 1.2),
        # The gamma sampler compiles once per shape (seconds each): 50_000 draws, shared with
        # test_student_t.py.
        gradients=(
            # E|z| at loc = 0; d/d loc is E[sign z] = 0.
            Gradient((6.0, 0.0, 1.5), jnp.abs, lambda df, m, s: [
                _student_t_abs_moment(df, s) * (1 / (2 * df) + (special.digamma((df - 1) / 2)
                                                                - special.digamma(df / 2)) / 2),
                0.0, _student_t_abs_moment(df, 1.0)], n=50_000),
            # E log|z| = log scale + (log df + digamma(1/2) - digamma(df/2)) / 2 at loc = 0.
            Gradient((0.5, 0.0, 2.0), lambda z: jnp.log(jnp.abs(z)),
                     lambda df, m, s: [1 / (2 * df) - special.polygamma(1, df / 2) / 4, None,
                                       1 / s], n=50_000),
        ),
        trainer_kl=(pvj.StudentT(_a(3.0, 0.8), _a(0.5, -1.0), _a(0.7, 2.0)),
                    pvj.StudentT(_a(5.0, 2.0), 0.0, 1.0), 20_000),
        # P(|T| > 3.4e38 / scale) <= 1e-11 per draw here (student_t.py): no draw overflows.
        ranges={"df": (0.3, 1e2, True), "loc": (-1e2, 1e2, False), "scale": (1e-2, 1e2, True)},
    ),
    "lomax": Cases(
        positive=True,
        standard_prior=(1.0, 1.0),
        grid=pvj.Lomax(_a(0.05, 0.8, 1.5, 2.5, 40.0), _a(1.0, 0.2, 3.0, 1.0, 10.0)),
        moments=pvj.Lomax(_a(0.5, 1.0, 1.5, 2.0, 2.5, 40.0), _a(1.0, 2.0, 0.5, 3.0, 1.5, 7.0)),
        outside=(pvj.Lomax(2.5, 4.0), (-1e-3,)),
        singles=(pvj.Lomax(0.3, 1.0), pvj.Lomax(2.5, 0.01), pvj.Lomax(40.0, 5.0)),
        batch=pvj.Lomax(_a(0.3, 2.0, 50.0), _a(0.5, 1.0, 3.0)),
        grad_point=pvj.Lomax(1.3, 1.2),
        gradients=(
            # E log z = log lam - euler_gamma - digamma(alpha).
            Gradient((0.5, 2.0), jnp.log, lambda a, s: [-special.polygamma(1, a), 1 / s],
                     n=50_000),
            Gradient((3.0, 0.7), jnp.log, lambda a, s: [-special.polygamma(1, a), 1 / s],
                     n=50_000),
            # E z = lam / (alpha - 1).
            Gradient((5.0, 1.5), lambda z: z, lambda a, s: [-s / (a - 1) ** 2, 1 / (a - 1)],
                     n=50_000),
        ),
        trainer_kl=(pvj.Lomax(_a(2.0, 0.7), _a(0.5, 3.0)), pvj.Lomax(_a(1.0, 1.5), 1.0),
                    20_000),
        ranges={"alpha": (1e-2, 1e2, True), "scale": (1e-2, 1e2, True)},
        mean_log=(pvj.Lomax(_a(0.05, 0.5, 1.0, 3.0, 40.0), _a(2.0, 1.0, 0.3, 5.0, 1.0)), 1e-5,
                  1e-5),
    ),
    "weibull": Cases(
        positive=True,
        standard_prior=(1.0, 1.0),
        grid=pvj.Weibull(_a(0.2, 0.5, 1.0, 2.5, 40.0), _a(1.0, 0.2, 3.0, 1.0, 10.0)),
        moments=pvj.Weibull(_a(0.1, 0.5, 1.0, 3.0, 100.0, 1e4), _a(1.0, 2.0, 0.5, 3.0, 1.5, 7.0)),
        outside=(pvj.Weibull(0.5, 1.0), (-1.0, 0.0, np.inf)),
        singles=(pvj.Weibull(0.3, 1.0), pvj.Weibull(1.0, 2.0), pvj.Weibull(8.0, 0.1)),
        batch=pvj.Weibull(_a(0.3, 2.0, 50.0), _a(0.5, 1.0, 3.0)),
        grad_point=pvj.Weibull(1.3, 1.2),
        gradients=(
            # E log z = log lam - euler_gamma / k.
            Gradient((0.4, 2.0), jnp.log, lambda k, s: [np.euler_gamma / k ** 2, 1 / s],
                     n=50_000),
            # E z = lam Gamma(1 + 1/k).
            Gradient((2.5, 0.5), lambda z: z, lambda k, s: [
                -s * special.gamma(1 + 1 / k) * special.digamma(1 + 1 / k) / k ** 2,
                special.gamma(1 + 1 / k)], n=50_000),
        ),
        trainer_kl=(pvj.Weibull(_a(0.5, 3.0, 1.0), _a(2.0, 0.5, 1.0)),
                    pvj.Weibull(_a(1.0, 1.5, 0.3), _a(1.0, 1.0, 2.0)), 100_000),
        ranges={"concentration": (1e-2, 1e2, True), "scale": (1e-2, 1e2, True)},
        kl_pairs=tuple(_WEIBULL_PAIRS[::3] + _WEIBULL_PAIRS[1::9]),
        kl_function=pvj.kl_weibull,
        mean_log=(pvj.Weibull(_a(0.2, 1.0, 5.0, 60.0), _a(2.0, 1.0, 0.3, 5.0)), 1e-5, 1e-5),
    ),
    "generalized_pareto": Cases(
        positive=True,
        standard_prior=(1.0, 0.5, 0.0),
        # Both signs of xi, and xi within 1e-6 of 0 on either side.
        grid=pvj.GeneralizedPareto(_a(0.5, 1.0, 2.0, 0.1, 3.0, 1.0, 10.0, 1.0),
                                   _a(-0.5, -0.1, -1e-6, 0.0, 1e-6, 0.3, 1.0, 2.0),
                                   _a(0.0, -1.0, 2.0, 0.0, 0.5, 0.0, -3.0, 1.0)),
        moments=pvj.GeneralizedPareto(np.full(8, 1.3, np.float32),
                                      np.array(_GPD_MOMENT_XI, np.float32),
                                      np.full(8, -0.2, np.float32)),
        outside=(pvj.GeneralizedPareto(2.0, _a(-0.5, 0.0, 0.5), 1.0), (-3.0, 0.999)),
        singles=tuple(pvj.GeneralizedPareto(*p) for p in (
            (1.0, -0.5, 0.0), (0.3, -0.05, 2.0), (2.0, 0.0, -1.0), (1.0, 1e-6, 0.0),
            (0.7, 0.4, 0.0), (1.0, 2.0, 3.0), (0.01, 1.0, 0.0))),
        batch=pvj.GeneralizedPareto(_a(0.65, 1.3, 2.6), _a(0.2, 0.4, 0.8), _a(0.1, 0.2, 0.4)),
        grad_point=pvj.GeneralizedPareto(1.3, 0.4, 0.2),
        gradients=(
            # E z = mu + sigma / (1 - xi).
            Gradient((1.5, 0.2, 0.3), lambda z: z,
                     lambda s, x, m: [1 / (1 - x), s / (1 - x) ** 2, 1.0]),
            Gradient((0.7, -0.3, -1.0), lambda z: z,
                     lambda s, x, m: [1 / (1 - x), s / (1 - x) ** 2, 1.0]),
            # E log z = log sigma - euler_gamma - log xi - digamma(1 / xi) at mu = 0.
            Gradient((1.0, 0.6, 0.0), lambda log_z: log_z,
                     lambda s, x, m: [1 / s, _gpd_d_mean_log_d_xi(x), None],
                     sampler=pvj.rsample_log),
        ),
        trainer_kl=(pvj.GeneralizedPareto(_a(0.3, 2.0, 1.0), _a(1.2, 0.05, 0.5)),
                    pvj.GeneralizedPareto(1.0, 0.5), 100_000),
        ranges={"scale": (1e-2, 1e2, True), "shape": (1e-4, 2.0, True), "loc": (0.0, 0.0, False)},
        log_grid=pvj.GeneralizedPareto(_a(0.5, 0.1, 1.0, 1.0, 0.7), _a(-0.5, 0.0, 0.3, 2.0, 1e-6),
                                       _a(0.0, 0.0, 0.0, 1.0, 0.5)),
        # xi on both sides of mean_log's series switch at |xi| = 0.1, and both signs.
        mean_log=(pvj.GeneralizedPareto(*(np.array(v, np.float32) for v in zip(*_GPD_MEAN_LOG))),
                  2e-6, 1e-6),
    ),
    "symmetric_pareto": Cases(
        positive=False,
        standard_prior=(0.0, 2.0, 1.0),
        grid=pvj.SymmetricPareto(_a(-3.0, 0.0, 40.0, 0.0, 5.0), _a(0.2, 0.5, 1.0, 2.5, 50.0),
                                 _a(0.01, 1.0, 100.0, 1.0, 0.3)),
        moments=pvj.SymmetricPareto(3.0, _a(0.5, 1.0, 1.5, 2.0, 2.5, 7.0),
                                    _a(1.0, 1.0, 1.0, 1.0, 1.0, 10.0)),
        outside=(pvj.SymmetricPareto(0.0, 2.0, 1.0), (-np.inf, np.inf)),
        # The latent's alpha floor 0.5, and locations far from 0 at small and large scales.
        singles=tuple(pvj.SymmetricPareto(*p) for p in (
            (-1.0, 0.5, 1.0), (5.0, 1.0, 0.01), (0.3, 2.5, 3.0), (-200.0, 40.0, 100.0))),
        batch=pvj.SymmetricPareto(_a(0.35, 0.7, 1.4), _a(0.65, 1.3, 2.6), _a(0.2, 0.4, 0.8)),
        grad_point=pvj.SymmetricPareto(0.7, 1.3, 0.4),
        # loc and s held at their values in f.
        gradients=(
            # E[Z] = loc for alpha > 1 (alpha > 2 here, so the per-draw derivatives in alpha and
            # s have finite variance).
            Gradient((2.0, 3.5, 1.5), lambda z: z, lambda m, a, s: [1.0, 0.0, 0.0]),
            # log(1 + |Z - loc| / s) is Exponential(alpha): its mean is 1 / alpha, whatever loc.
            Gradient((0.5, 0.7, 2.0), lambda z: jnp.log1p(jnp.abs(z - 0.5) / 2.0),
                     lambda m, a, s: [0.0, -1 / a ** 2, None]),
            # E|Z - loc| = s / (alpha - 1), the Lomax mean.
            Gradient((-1.0, 3.5, 1.5), lambda z: jnp.abs(z + 1.0),
                     lambda m, a, s: [0.0, -s / (a - 1) ** 2, 1 / (a - 1)]),
        ),
        trainer_kl=(pvj.SymmetricPareto(_a(0.0, 1.5, -0.3, 4.0, 0.0), _a(2.0, 0.5, 5.0, 30.0, 0.7),
                                        1.0),
                    pvj.SymmetricPareto(0.0, 2.0, 1.0), 100_000),
        ranges={"loc": (-50.0, 3.0, False), "alpha": (0.5, 1e2, True), "scale": (1e-2, 1e2, True)},
    ),
}


def scalar_id(dist) -> str:
  return type(dist).__name__ + repr(tuple(float(p) for p in dist.params))


def names_where(predicate) -> list[str]:
  """The registered families whose cases satisfy ``predicate`` (registration order).

  A family without cases is left out here and fails test_registry.py instead.
  """
  return [n for n in pvj.family_names() if n in CASES and predicate(CASES[n])]


def per_case(field: str, predicate=lambda c: True) -> list[tuple[str, int]]:
  """(family, index) for every entry of a tuple field, over the registered families."""
  return [(n, i) for n in names_where(predicate) for i in range(len(getattr(CASES[n], field)))]
