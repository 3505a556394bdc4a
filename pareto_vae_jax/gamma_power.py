r"""The t3VAE objective: the gamma-power divergence between the data's and the model's joints.

t3VAE (Kim, Kwon, Cho, Lee & Won, ICLR 2024, arXiv 2312.01133) gives the prior, the decoder and
the encoder Student-t forms such that the model's joint over data ``x`` (``n`` dimensions) and
latent ``z`` (``m``) is of power form,

    p(x, z) = K [1 + S / nu]^(-(nu + n + m) / 2),    S = |z|^2 + |x - mu(z)|^2 / sigma^2,
    K = Gamma((nu + n + m) / 2) / (Gamma(nu / 2) (nu pi)^((n + m) / 2) sigma^n),

(prior ``t_m(0, I, nu)``, decoder mean ``mu(z)``, data scale ``sigma``), and replaces the ELBO's
``KL(q(x, z) || p(x, z))``, ``q(x, z) = p_data(x) q(z | x)``, by the gamma-power divergence
with ``gamma = -2 / (nu + n + m)``:

    C_g(q, p) = -(1 / g) int q p^g / (int p^(1 + g))^(g / (1 + g)),
    D_g(q || p) = C_g(q, p) - C_g(q, q),

which tends to the KL as ``g -> 0`` (``nu -> inf``). At this ``gamma`` the power ``p^gamma =
K^gamma (1 + S / nu)`` is linear in ``S``, so ``C_g(q, p)`` needs only second moments of ``q``,
and for the encoder ``q(z | x) = t_m(mu_x, nu / (nu + n) diag(s_x^2), nu + n)`` (covariance
``nu / (nu + n - 2) diag(s_x^2)``) the self term ``int q(z | x)^(1 + g) dz`` is a constant times
``|diag(s_x^2)|^(-g / 2)``. Worked through (this module's derivation, checked numerically by
``tests/test_gamma_power.py`` against a two-dimensional quadrature of ``D_g`` itself):

    D_g / (2 A) = E_q[ |x - mu(z)|^2 / (2 sigma^2) ] + R(mu_x, s_x) + const,
    R = 1/2 [ |mu_x|^2 + nu / (nu + n - 2) |s_x|^2 - nu C prod_i s_i^(2 delta) + nu tau ],

with ``A = (nu + n + m) / (2 nu) J^(-g / (1 + g)) > 0``, ``J = int p^(1 + g) / K^(1 + g)``,
``delta = 1 / (nu + n + m - 2)`` and ``C`` depending on the data through ``int p_data^(1 + g)``
(``entropy_coefficient``). t3VAE fixes ``C`` and the offset ``tau`` without the data: its
reference implementation (github.com/Mincheol2/t3VAE) uses ``log tau_0 = -n log sigma + log
Gamma((nu + n) / 2) - log Gamma(nu / 2) - n / 2 log(nu pi) + log(nu - 2) - log(nu + n - 2)``,
``C = (1 + m / (nu + n - 2)) tau_0^(2 delta)``, ``tau = tau_0^(2 / (nu + n - 2))``
(``t3vae_constants``); with these ``R -> KL(N(mu_x, s_x^2) || N(0, I))`` exactly as ``nu ->
inf``, and the reconstruction term is the Gaussian one, so the loss tends to minus the ELBO
(``tests/test_gamma_power.py`` checks both).

Only the paper's abstract was reachable from this workplace; the closed form above is derived
here and agrees term by term with that implementation's loss (up to the overall factor 2).

ParetoVAE (Cho, Seong & Won, ICLR 2026, OpenReview s5a8zBPFfe) does the same with the
multivariate symmetric Pareto (``multivariate_symmetric_pareto``), the l1 counterpart of the t.
Its paper could not be read here either (only its abstract), so its loss below is OUR
DERIVATION by the same steps, to be checked against the paper before results are attributed to
it. The l1 power-form joint

    p(x, z) = K1 [1 + S1 / nu]^(-(nu + n + m)),    S1 = |z|_1 + |x - mu(z)|_1 / sigma,

has the symPareto prior ``symPareto_m(0, 1, nu)`` as its marginal; at ``gamma = -1 / (nu + n +
m)`` the power ``p^gamma`` is linear in ``S1``. With the encoder ``symPareto_m(mu_x, nu / (nu +
n) s_x, nu + n)`` (the conditional's form) and ``E|mu + b u|`` in closed form for a symPareto
coordinate ``u`` (``E |mu + b u| = |mu| + b nu' / (nu' - 1) (1 + |mu| / (b nu'))^(-(nu' - 1))``,
``nu' = nu + n``, from the Laplace scale mixture ``u = nu' L / G``):

    D_g / A1 = E_q[ |x - mu(z)|_1 / sigma ] + R1(mu_x, s_x) + const,
    R1 = sum_i E|z_i| - nu C1 prod_i s_i^(delta1) + nu tau1,    delta1 = 1 / (nu + n + m - 1),

the reconstruction being the Laplace likelihood's (``--config.likelihood=laplace``). The
data-free constants mirror t3VAE's: ``kappa = symPareto_n(0 | 0, sigma, nu) (nu - 1) / (nu + n -
1)``, ``C1 = (1 + m / (nu + n - 1)) kappa^delta1``, ``tau1 = kappa^(1 / (nu + n - 1))``, so that
``R1 -> KL(Laplace(mu, s) || Laplace(0, 1))`` as ``nu -> inf``; ``tests/test_gamma_power.py``
checks the limit and the derivation against a quadrature of ``D_g`` as for t3VAE.

ParetoVAE's other decoder, the Student t (``--config.likelihood=gaussian`` with the symPareto
latent; again OUR DERIVATION), comes from the mixed power-form joint

    p(x, z) = K2 [1 + S2 / nu]^(-(nu + m + n / 2)),    S2 = |z|_1 + |x - mu(z)|^2 / (2 sigma^2),

whose z-marginal is again ``symPareto_m(0, 1, nu)`` and whose decoder ``p(x | z)`` is the
multivariate t with ``2 (nu + m)`` degrees of freedom and scale^2 ``nu sigma^2 (1 + |z|_1 / nu) /
(nu + m)``. At ``gamma = -1 / (nu + m + n / 2)`` the power is linear in ``S2``, and everything
above carries over with ``n / 2`` in place of ``n`` on the latent side (the encoder
``symPareto_m(mu_x, nu / (nu + n / 2) s_x, nu + n / 2)``, ``delta2 = 1 / (nu + m + n / 2 - 1)``,
the constants), while the reconstruction is the Gaussian one, ``E_q |x - mu(z)|^2 / (2
sigma^2)``: as ``nu -> inf`` the loss tends to minus the ELBO of a Laplace(0, 1) prior with a
N(mu(z), sigma^2) decoder. ``kappa`` takes the mode density of this joint's x-marginal, the t
``t_n(0, sigma^2, 2 nu)``, in place of the symPareto's.

Each of the three data-free choices of ``(C, tau)`` makes the regularizer non-negative with its
minimum 0 at ``loc = 0`` and a scale ``s* = tau^(1/2)`` (t) or ``tau`` (symPareto) that tends to 1
as ``nu -> inf``; the tests check this.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import multivariate_symmetric_pareto
from pareto_vae_jax.distributions import multivariate_t

Array = jax.Array

# The latent family of each power-form model and the likelihoods its loss reconstructs with:
# t3VAE's t decoder (Gaussian squared error); ParetoVAE's symPareto decoder (Laplace) or t decoder
# (Gaussian squared error).
FAMILIES = {
    "multivariate_t": ("gaussian",),
    "multivariate_symmetric_pareto": ("laplace", "gaussian"),
}


def sympareto_data_dim(data_dim: float, likelihood: str = "laplace") -> float:
  """The data's weight on the latent side of a symPareto joint: ``n`` with the symPareto decoder
  (``laplace``), ``n / 2`` with the t decoder (``gaussian``; see the module docstring)."""
  if likelihood not in FAMILIES["multivariate_symmetric_pareto"]:
    raise ValueError(f"The symPareto gamma-power loss is derived for the likelihoods "
                     f"{FAMILIES['multivariate_symmetric_pareto']}; got '{likelihood}'.")
  return data_dim if likelihood == "laplace" else data_dim / 2


def gamma(nu: float,
          data_dim: int,
          latent_dim: int,
          family: str = "multivariate_t",
          likelihood: str = "laplace") -> float:
  """``gamma = -2 / (nu + n + m)`` (t3VAE), ``-1 / (nu + n + m)`` (symPareto decoder) or ``-1 /
  (nu + n / 2 + m)`` (symPareto latent, t decoder): the power at which the model's joint density
  is linear in its quadratic (l1) form."""
  if family == "multivariate_t":
    return -2.0 / (nu + data_dim + latent_dim)
  return -1.0 / (nu + sympareto_data_dim(data_dim, likelihood) + latent_dim)


def check_nu(nu: float, low: float = 2.0) -> None:
  """nu > 2 for the t (finite second moments), nu > 1 for the symPareto (finite first)."""
  if not nu > low:
    raise ValueError(f"The gamma-power objective needs nu > {low:g} (finite moments of the "
                     f"power it integrates); got {nu}. Set --config.latent_df above {low:g}.")


def encoder(loc: Array, scale: Array, nu: float, data_dim: int) -> multivariate_t.MultivariateT:
  """t3VAE's encoder ``t_m(loc, nu / (nu + n) diag(scale^2), nu + n)`` from the predicted
  location and scale (its covariance is ``nu / (nu + n - 2) diag(scale^2)``)."""
  check_nu(nu)
  factor = math.sqrt(nu / (nu + data_dim))
  return multivariate_t.MultivariateT(loc, scale * factor,
                                      jnp.full(loc.shape[:-1], nu + data_dim, loc.dtype))


def log_joint_power_integral(nu: float, data_dim: int, latent_dim: int, sigma: float) -> float:
  """``log J``, ``J = int (1 + S / nu)^(-(nu + n + m - 2) / 2) d(x, z)`` (see the module doc)."""
  d = data_dim + latent_dim
  return (data_dim * math.log(sigma) + d / 2 * math.log(nu * math.pi) + math.lgamma(
      (nu - 2) / 2) - math.lgamma((nu + d - 2) / 2))


def log_encoder_power_integral(nu: float, data_dim: int, latent_dim: int) -> float:
  """``log G``: ``int q(z | x)^(1 + gamma) dz = G |nu / (nu + n) diag(s^2)|^(-gamma / 2)``."""
  n, m = data_dim, latent_dim
  g = gamma(nu, n, m)
  a = nu + n
  log_kq = math.lgamma((a + m) / 2) - math.lgamma(a / 2) - m / 2 * math.log(a * math.pi)
  return ((1 + g) * log_kq + m / 2 * math.log(a * math.pi) + math.lgamma((a - 2) / 2) - math.lgamma(
      (a + m - 2) / 2))


def entropy_coefficient(nu: float, data_dim: int, latent_dim: int, sigma: float,
                        log_data_power: float) -> float:
  """The exact ``C`` of ``R`` when ``log int p_data^(1 + gamma) dx = log_data_power`` and the
  encoder's scale does not depend on ``x``: ``(J^g P G)^(1 / (1 + g)) (nu / (nu + n))^(m delta)``."""
  n, m = data_dim, latent_dim
  g = gamma(nu, n, m)
  delta = 1.0 / (nu + n + m - 2)
  log_c = (g * log_joint_power_integral(nu, n, m, sigma) + log_data_power +
           log_encoder_power_integral(nu, n, m)) / (1 + g) + m * delta * math.log(nu / (nu + n))
  return math.exp(log_c)


def t3vae_constants(nu: float,
                    data_dim: int,
                    latent_dim: int,
                    sigma: float = 1.0) -> tuple[float, float]:
  """``(C, tau)`` as t3VAE fixes them (module docstring): ``R -> KL`` as ``nu -> inf``."""
  check_nu(nu)
  n, m = data_dim, latent_dim
  log_tau0 = (-n * math.log(sigma) + math.lgamma((nu + n) / 2) - math.lgamma(nu / 2) -
              n / 2 * math.log(nu * math.pi) + math.log(nu - 2) - math.log(nu + n - 2))
  delta = 1.0 / (nu + n + m - 2)
  c = (1 + m / (nu + n - 2)) * math.exp(2 * delta * log_tau0)
  tau = math.exp(2 * log_tau0 / (nu + n - 2))
  return c, tau


def regularizer(loc: Array,
                scale: Array,
                nu: float,
                data_dim: int,
                sigma: float = 1.0,
                constants: tuple[float, float] | None = None) -> Array:
  """t3VAE's closed-form regularizer ``R`` per example, ``[...]`` from ``loc, scale [..., m]``.

  ``R = 1/2 [|loc|^2 + nu / (nu + n - 2) |scale|^2 - nu C prod scale^(2 delta) + nu tau]``; it
  plays the KL's part (``R -> KL(N(loc, scale^2) || N(0, I))`` as ``nu -> inf``). ``constants``
  ``(C, tau)`` default to t3VAE's (``t3vae_constants``).
  """
  m = loc.shape[-1]
  c, tau = constants if constants is not None else t3vae_constants(nu, data_dim, m, sigma)
  delta = 1.0 / (nu + data_dim + m - 2)
  second = jnp.sum(jnp.square(loc), -1) + nu / (nu + data_dim - 2) * jnp.sum(jnp.square(scale), -1)
  # prod s^(2 delta) = exp(2 delta sum log s): small for every nu, no overflow.
  spread = jnp.exp(2 * delta * jnp.sum(jnp.log(scale), -1))
  return 0.5 * (second - nu * c * spread + nu * tau)


# ------------------------------------------------------------------------------------------------
# The symmetric Pareto (ParetoVAE, our derivation: see the module docstring).


def sympareto_encoder(loc: Array,
                      scale: Array,
                      nu: float,
                      data_dim: int,
                      likelihood: str = "laplace"
                     ) -> multivariate_symmetric_pareto.MultivariateSymmetricPareto:
  """``symPareto_m(loc, nu / (nu + n') scale, nu + n')`` from the predicted location and scale,
  ``n' = sympareto_data_dim(n, likelihood)``."""
  check_nu(nu, low=1.0)
  a = nu + sympareto_data_dim(data_dim, likelihood)
  return multivariate_symmetric_pareto.MultivariateSymmetricPareto(
      loc, scale * (nu / a), jnp.full(loc.shape[:-1], a, loc.dtype))


def sympareto_abs_mean(loc: Array, scale: Array, df: float) -> Array:
  """``E|z_i|`` per coordinate of ``symPareto(loc, scale, df)`` (df > 1)."""
  a = jnp.abs(loc)
  return a + scale * df / (df - 1) * jnp.exp(-(df - 1) * jnp.log1p(a / (scale * df)))


def log_sympareto_joint_power_integral(nu: float,
                                       data_dim: int,
                                       latent_dim: int,
                                       sigma: float,
                                       likelihood: str = "laplace") -> float:
  """``log J``, ``J = int (1 + S / nu)^(-(nu + n' + m - 1)) d(x, z)`` with ``S = S1`` (laplace) or
  ``S2`` (gaussian)."""
  n, m = data_dim, latent_dim
  if likelihood == "laplace":
    d = n + m
    log_gamma_ratio = math.lgamma(nu - 1) - math.lgamma(nu + d - 1)
    return n * math.log(sigma) + d * math.log(2 * nu) + log_gamma_ratio
  return (n / 2 * math.log(2 * math.pi * nu) + n * math.log(sigma) + m * math.log(2 * nu) +
          math.lgamma(nu - 1) - math.lgamma(nu + m + sympareto_data_dim(n, likelihood) - 1))


def log_sympareto_encoder_power_integral(nu: float,
                                         data_dim: int,
                                         latent_dim: int,
                                         likelihood: str = "laplace") -> float:
  """``log G``: ``int q(z | x)^(1 + gamma) dz = G prod_i b_i^(-gamma)`` (b the encoder's scale)."""
  m, a = latent_dim, nu + sympareto_data_dim(data_dim, likelihood)
  g = gamma(nu, data_dim, m, "multivariate_symmetric_pareto", likelihood)
  log_kq = math.lgamma(a + m) - math.lgamma(a) - m * math.log(2 * a)
  return (1 + g) * log_kq + m * math.log(2 * a) + math.lgamma(a - 1) - math.lgamma(a + m - 1)


def sympareto_entropy_coefficient(nu: float,
                                  data_dim: int,
                                  latent_dim: int,
                                  sigma: float,
                                  log_data_power: float,
                                  likelihood: str = "laplace") -> float:
  """The exact ``C`` when ``log int p_data^(1 + gamma) = log_data_power`` (encoder scale not
  depending on ``x``)."""
  n, m = data_dim, latent_dim
  g = gamma(nu, n, m, "multivariate_symmetric_pareto", likelihood)
  n_eff = sympareto_data_dim(n, likelihood)
  delta = 1.0 / (nu + n_eff + m - 1)
  log_c = (g * log_sympareto_joint_power_integral(nu, n, m, sigma, likelihood) + log_data_power +
           log_sympareto_encoder_power_integral(nu, n, m, likelihood)) / (
               1 + g) + m * delta * math.log(nu / (nu + n_eff))
  return math.exp(log_c)


def sympareto_constants(nu: float,
                        data_dim: int,
                        latent_dim: int,
                        sigma: float = 1.0,
                        likelihood: str = "laplace") -> tuple[float, float]:
  """``(C, tau)`` chosen without the data, as t3VAE chooses its (module docstring)."""
  check_nu(nu, low=1.0)
  n, m = data_dim, latent_dim
  n_eff = sympareto_data_dim(n, likelihood)
  if likelihood == "laplace":  # symPareto_n(0 | 0, sigma, nu)
    log_mode = math.lgamma(nu + n) - math.lgamma(nu) - n * math.log(2 * nu * sigma)
  else:  # t_n(0 | 0, sigma^2, 2 nu)
    log_mode = (math.lgamma(nu + n / 2) - math.lgamma(nu) - n / 2 * math.log(2 * math.pi * nu) -
                n * math.log(sigma))
  log_kappa = log_mode + math.log(nu - 1) - math.log(nu + n_eff - 1)
  delta = 1.0 / (nu + n_eff + m - 1)
  return ((1 + m / (nu + n_eff - 1)) * math.exp(delta * log_kappa),
          math.exp(log_kappa / (nu + n_eff - 1)))


def sympareto_regularizer(loc: Array,
                          scale: Array,
                          nu: float,
                          data_dim: int,
                          sigma: float = 1.0,
                          constants: tuple[float, float] | None = None,
                          likelihood: str = "laplace") -> Array:
  """``R = sum_i E|z_i| - nu C prod_i scale_i^delta + nu tau`` per example, ``[...]``.

  ``R -> KL(Laplace(loc, scale) || Laplace(0, 1))`` as ``nu -> inf`` (module docstring), for
  either decoder (``likelihood`` ``laplace`` or ``gaussian``).
  """
  m = loc.shape[-1]
  c, tau = (constants if constants is not None else sympareto_constants(
      nu, data_dim, m, sigma, likelihood))
  n_eff = sympareto_data_dim(data_dim, likelihood)
  delta = 1.0 / (nu + n_eff + m - 1)
  b, df = scale * (nu / (nu + n_eff)), nu + n_eff
  first = jnp.sum(sympareto_abs_mean(loc, b, df), -1)
  spread = jnp.exp(delta * jnp.sum(jnp.log(scale), -1))
  return first - nu * c * spread + nu * tau


def posterior(family: str,
              loc: Array,
              scale: Array,
              nu: float,
              data_dim: int,
              likelihood: str = "laplace"):
  """The power-form model's encoder from the predicted ``loc`` and ``scale`` (``likelihood``
  picks the symPareto model's decoder; t3VAE has one)."""
  if family == "multivariate_t":
    return encoder(loc, scale, nu, data_dim)
  return sympareto_encoder(loc, scale, nu, data_dim, likelihood)


def loss_regularizer(family: str,
                     loc: Array,
                     scale: Array,
                     nu: float,
                     data_dim: int,
                     sigma: float,
                     likelihood: str = "laplace") -> Array:
  """The regularizer in the KL's place: ``regularizer`` (t) or ``sympareto_regularizer``."""
  if family == "multivariate_t":
    return regularizer(loc, scale, nu, data_dim, sigma)
  return sympareto_regularizer(loc, scale, nu, data_dim, sigma, likelihood=likelihood)
