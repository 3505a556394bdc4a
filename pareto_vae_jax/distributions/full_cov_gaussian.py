"""Full-covariance Gaussian latent N(loc, L L^T), joint over the last axis.

``FullCovGaussian(loc, scale_tril)``: ``loc`` has shape ``[..., D]`` and ``scale_tril`` (the
Cholesky factor ``L`` of the covariance: lower triangular, positive diagonal) ``[..., D, D]``.
Unlike the factorized families, whose functions are elementwise, the density is joint over the
last axis (``event_ndim = 1``): ``log_prob(dist, z)`` takes ``z`` of shape ``[..., D]`` and returns
``[...]``.

An encoder predicts ``num_raw(D) = D + D(D-1)/2 + D`` unconstrained numbers per example, laid out
``[loc | strictly-lower entries of L | raw diagonal]``; ``from_flat`` turns them into a valid
distribution, with ``diag L = softplus(raw) + 1e-4`` (``heads.softplus_floor``).

Training needs only ``rsample_and_log_prob`` (which reads ``log q`` off the standard-normal draw,
with no solve) and a closed-form KL to the prior: ``kl_full_cov_standard`` (``N(0, I)``),
``kl_full_cov`` (another full-covariance Gaussian) or ``kl_full_cov_diag`` (a factorized
``Gaussian``, e.g. a learned conditional prior). Every KL is written as a sum of non-negative
terms in the whitened coordinates of the prior, so that a ``q`` close to ``p`` does not lose its
small KL to the cancellation of ``tr - D - log det`` (see ``_kl_whitened``).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import solve_triangular

from pareto_vae_jax.distributions import base, heads, registry
from pareto_vae_jax.distributions.gaussian import Gaussian

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

_LOG_2PI = math.log(2 * math.pi)
# Matrix products at full float32 precision: the default on TPU (bf16 passes) and on recent GPUs
# (TF32) keeps ~3 significant digits, too few for a log-density.
_HIGHEST = jax.lax.Precision.HIGHEST

_FIX = ("Build it with pareto_vae_jax.distributions.full_cov_gaussian.from_flat (or "
        "scale_tril_from_raw) from unconstrained outputs, or pass jnp.linalg.cholesky(cov) of a "
        "positive-definite covariance.")


@jax.tree_util.register_pytree_node_class
class FullCovGaussian:
  """Gaussian ``N(loc, scale_tril @ scale_tril^T)`` over the last axis.

  ``loc`` and ``scale_tril`` are broadcast to a common batch shape. When the values are concrete
  (not traced by jit/vmap/grad) the constructor checks that ``scale_tril`` is lower triangular
  with a strictly positive diagonal and raises ``ValueError`` otherwise. Under a transformation
  the values cannot be inspected: a non-positive diagonal then yields ``nan`` downstream, and
  entries above the diagonal are not masked (``transform`` multiplies by them, the solves ignore
  them), so build traced factors with ``scale_tril_from_raw``. Unflattening the pytree bypasses
  the checks.

  Args:
    loc: mean, shape ``[..., D]``.
    scale_tril: lower-triangular Cholesky factor ``L`` of the covariance with positive diagonal,
      shape ``[..., D, D]``.
  """

  event_ndim = 1

  def __init__(self, loc: ArrayLike, scale_tril: ArrayLike):
    dtype = jnp.result_type(loc, scale_tril, float)
    loc = jnp.asarray(loc, dtype)
    scale_tril = jnp.asarray(scale_tril, dtype)
    if loc.ndim < 1 or scale_tril.ndim < 2 or scale_tril.shape[-1] != scale_tril.shape[-2]:
      raise ValueError(
          f"FullCovGaussian: loc needs shape [..., D] and scale_tril [..., D, D]; got loc "
          f"{loc.shape} and scale_tril {scale_tril.shape}.")
    if loc.shape[-1] != scale_tril.shape[-1]:
      raise ValueError(
          f"FullCovGaussian: loc has D = {loc.shape[-1]} on its last axis but scale_tril is "
          f"{scale_tril.shape[-2]} x {scale_tril.shape[-1]}; both must describe the same D.")
    try:
      batch = jnp.broadcast_shapes(loc.shape[:-1], scale_tril.shape[:-2])
    except ValueError:
      raise ValueError(
          f"FullCovGaussian: the batch shapes of loc {loc.shape[:-1]} and scale_tril "
          f"{scale_tril.shape[:-2]} do not broadcast; give them equal (or size-1) leading axes."
      ) from None
    loc = jnp.broadcast_to(loc, batch + loc.shape[-1:])
    scale_tril = jnp.broadcast_to(scale_tril, batch + scale_tril.shape[-2:])
    if base._is_concrete(scale_tril):
      _check_scale_tril(np.asarray(scale_tril))
    object.__setattr__(self, "loc", loc)
    object.__setattr__(self, "scale_tril", scale_tril)

  def __setattr__(self, name, value):
    raise AttributeError("FullCovGaussian is immutable; build a new one.")

  def tree_flatten(self):
    return (self.loc, self.scale_tril), None

  @classmethod
  def tree_unflatten(cls, _, children):
    obj = object.__new__(cls)
    object.__setattr__(obj, "loc", children[0])
    object.__setattr__(obj, "scale_tril", children[1])
    return obj

  @property
  def batch_shape(self) -> tuple[int, ...]:
    return tuple(self.loc.shape[:-1])

  @property
  def event_shape(self) -> tuple[int, ...]:
    return tuple(self.loc.shape[-1:])

  @property
  def dtype(self):
    return self.loc.dtype

  def __repr__(self) -> str:
    return (f"FullCovGaussian(batch {self.batch_shape}, event {self.event_shape}, "
            f"{self.dtype})")


def _check_scale_tril(scale_tril: np.ndarray) -> None:
  upper = np.triu(scale_tril, 1)
  if np.any(upper != 0):
    bad = upper != 0
    raise ValueError(
        f"FullCovGaussian: scale_tril must be lower triangular, but {int(bad.sum())} entries "
        f"above the diagonal are nonzero (e.g. {upper[bad].ravel()[:3]}). {_FIX}")
  diag = np.diagonal(scale_tril, axis1=-2, axis2=-1)
  bad = ~(diag > 0)
  if bad.any():
    raise ValueError(f"FullCovGaussian: the diagonal of scale_tril must be > 0 everywhere; got "
                     f"{diag[bad].ravel()[:3]} at {int(bad.sum())} position(s). {_FIX}")


def num_raw(latent_dim: int) -> int:
  """Number of unconstrained encoder outputs per example for a ``D``-dimensional latent.

  ``D`` (loc) + ``D(D-1)/2`` (strictly-lower entries of ``L``) + ``D`` (raw diagonal).
  """
  if not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
    raise ValueError(f"latent_dim must be a positive integer; got {latent_dim!r}.")
  return latent_dim * (latent_dim + 3) // 2


def scale_tril_from_raw(tril_raw: ArrayLike, diag_raw: ArrayLike) -> Array:
  """A valid Cholesky factor ``L = L* + diag(softplus(diag_raw) + 1e-4)`` from raw outputs.

  Args:
    tril_raw: the strictly-lower entries ``L*``, shape ``[..., D(D-1)/2]``, in the row-major
      order of ``np.tril_indices(D, -1)``.
    diag_raw: unconstrained diagonal, shape ``[..., D]``.

  Returns:
    ``L`` of shape ``[..., D, D]`` (the broadcast batch shape), lower triangular, diagonal
    ``>= 1e-4``.
  """
  tril_raw = jnp.asarray(tril_raw)
  diag_raw = jnp.asarray(diag_raw)
  if diag_raw.ndim < 1 or tril_raw.ndim < 1:
    raise ValueError(f"scale_tril_from_raw: tril_raw and diag_raw need a last axis; got shapes "
                     f"{tril_raw.shape} and {diag_raw.shape}.")
  d = diag_raw.shape[-1]
  if tril_raw.shape[-1] != d * (d - 1) // 2:
    raise ValueError(f"scale_tril_from_raw: diag_raw has D = {d}, so tril_raw needs D(D-1)/2 = "
                     f"{d * (d - 1) // 2} entries on its last axis; got {tril_raw.shape[-1]}.")
  dtype = jnp.result_type(tril_raw, diag_raw, float)
  batch = jnp.broadcast_shapes(tril_raw.shape[:-1], diag_raw.shape[:-1])
  rows, cols = np.tril_indices(d, -1)
  diag = np.arange(d)
  sigma = heads.softplus_floor(diag_raw.astype(dtype))
  scale_tril = jnp.zeros(batch + (d, d), dtype)
  scale_tril = scale_tril.at[..., rows, cols].set(
      jnp.broadcast_to(tril_raw.astype(dtype), batch + tril_raw.shape[-1:]))
  return scale_tril.at[..., diag, diag].set(jnp.broadcast_to(sigma, batch + (d,)))


def from_flat(raw: ArrayLike, latent_dim: int) -> FullCovGaussian:
  """The distribution an encoder predicts as ``raw = [loc | tril_raw | diag_raw]``.

  Args:
    raw: unconstrained outputs, shape ``[..., num_raw(latent_dim)]``.
    latent_dim: ``D``.

  Returns:
    A ``FullCovGaussian`` with batch shape ``raw.shape[:-1]``.
  """
  raw = jnp.asarray(raw)
  d = latent_dim
  if raw.ndim < 1 or raw.shape[-1] != num_raw(d):
    raise ValueError(
        f"from_flat: a latent of dimension {d} needs num_raw({d}) = {num_raw(d)} raw values on "
        f"the last axis ([loc | D(D-1)/2 lower entries | D diagonal]); got shape {raw.shape}. "
        "Size the encoder's last layer with full_cov_gaussian.num_raw(latent_dim).")
  t = d * (d - 1) // 2
  return FullCovGaussian(raw[..., :d], scale_tril_from_raw(raw[..., d:d + t], raw[..., d + t:]))


def _log_det_half(dist: FullCovGaussian) -> Array:
  # log |L| = 1/2 log det(L L^T), since L is triangular.
  return jnp.sum(jnp.log(jnp.diagonal(dist.scale_tril, axis1=-2, axis2=-1)), -1)


@functools.partial(jnp.vectorize, signature="(d,d),(d,e)->(d,e)")
def _solve_lower(scale_tril: Array, rhs: Array) -> Array:
  # L^{-1} rhs, broadcasting over leading axes; an L shared by many right-hand sides (samples
  # against a batch, a batch against one prior) is solved once with the columns side by side.
  return solve_triangular(scale_tril, rhs, lower=True)


def transform(dist: FullCovGaussian, eps: ArrayLike) -> tuple[Array, Array]:
  """Maps standard-normal noise to a draw and its log-density: ``z = loc + L eps``.

  ``log q(z) = log N(eps; 0, I) - log |det L|`` by the change of variables, so no solve is
  needed: ``-|eps|^2 / 2 - sum_i log L_ii - D/2 log(2 pi)``. Prefer this to ``log_prob`` at a
  draw: it is exact however ill-conditioned ``L`` is.

  Args:
    dist: a ``FullCovGaussian`` with batch shape ``B``.
    eps: standard-normal noise of shape ``[..., D]`` broadcasting against ``B + [D]``
      (e.g. ``[k] + B + [D]``).

  Returns:
    ``(z, log_q)`` with shapes ``S + [D]`` and ``S``, ``S`` the broadcast batch shape.
  """
  eps = jnp.asarray(eps, dist.dtype)
  z = dist.loc + jnp.matmul(dist.scale_tril, eps[..., None], precision=_HIGHEST)[..., 0]
  d = dist.event_shape[0]
  log_q = -0.5 * jnp.sum(jnp.square(eps), -1) - _log_det_half(dist) - 0.5 * d * _LOG_2PI
  return z, log_q


def _noise(key: Array, dist: FullCovGaussian, sample_shape: int | base.Shape) -> Array:
  shape = base._sample_shape(sample_shape) + dist.batch_shape + dist.event_shape
  return jax.random.normal(key, shape, dist.dtype)


def rsample(key: Array, dist: FullCovGaussian, sample_shape: int | base.Shape = ()) -> Array:
  """Reparameterized draws of shape ``sample_shape + batch + [D]``."""
  return transform(dist, _noise(key, dist, sample_shape))[0]


def rsample_and_log_prob(
    key: Array, dist: FullCovGaussian, sample_shape: int | base.Shape = ()) -> tuple[Array, Array]:
  """Draws and their log-densities (``log q`` from the noise, see ``transform``).

  The same key gives the same draws as ``rsample``.

  Returns:
    ``(z, log_q)`` with shapes ``sample_shape + batch + [D]`` and ``sample_shape + batch``.
  """
  return transform(dist, _noise(key, dist, sample_shape))


def log_prob(dist: FullCovGaussian, z: ArrayLike) -> Array:
  """Joint log-density at ``z`` of shape ``[..., D]``, broadcast against the batch.

  ``log N(z; mu, L L^T) = -|u|^2 / 2 - sum_i log L_ii - D/2 log(2 pi)`` with ``u = L^{-1}(z - mu)``
  (one triangular solve, since ``(L L^T)^{-1} = L^{-T} L^{-1}``). The solve amplifies rounding
  by up to the condition number of ``L``; to score a draw of ``dist`` itself use ``transform``
  or ``rsample_and_log_prob``, which are exact for any ``L``.

  Returns:
    An array of the broadcast shape of ``z.shape[:-1]`` and the batch shape.
  """
  diff = jnp.asarray(z, dist.dtype) - dist.loc
  u = _solve_lower(dist.scale_tril, diff[..., None])[..., 0]
  d = dist.event_shape[0]
  return -0.5 * jnp.sum(jnp.square(u), -1) - _log_det_half(dist) - 0.5 * d * _LOG_2PI


def mean(dist: FullCovGaussian) -> Array:
  """``E[z] = loc``, shape ``batch + [D]``."""
  return dist.loc


def covariance(dist: FullCovGaussian) -> Array:
  """``L L^T``, shape ``batch + [D, D]``."""
  return jnp.matmul(dist.scale_tril, jnp.swapaxes(dist.scale_tril, -1, -2), precision=_HIGHEST)


def variance(dist: FullCovGaussian) -> Array:
  """Marginal variances ``diag(L L^T)_i = sum_j L_ij^2``, shape ``batch + [D]``."""
  return jnp.sum(jnp.square(dist.scale_tril), -1)


def entropy(dist: FullCovGaussian) -> Array:
  """Differential entropy ``D/2 (1 + log 2 pi) + sum_i log L_ii``, shape ``batch``."""
  d = dist.event_shape[0]
  return 0.5 * d * (1.0 + _LOG_2PI) + _log_det_half(dist)


def _kl_whitened(log_m_diag: Array, m_strict_lower: Array, delta: Array) -> Array:
  """``KL(N(mu_q, L_q L_q^T) || N(mu_p, L_p L_p^T))`` from its whitened pieces.

  With ``M = L_p^{-1} L_q`` (lower triangular, ``M_ii = L_q,ii / L_p,ii``) and
  ``delta = L_p^{-1}(mu_q - mu_p)``, the textbook

      KL = 1/2 [tr(S_p^{-1} S_q) + |delta|^2 - D + log det S_p - log det S_q]

  has ``tr(S_p^{-1} S_q) = |M|_F^2`` and ``log det S_p - log det S_q = -2 sum_i log M_ii``, so

      KL = 1/2 [sum_i (M_ii^2 - 1 - 2 log M_ii) + sum_{i>j} M_ij^2 + |delta|^2],

  a sum of non-negative terms (``x^2 - 1 - 2 log x >= 0``). ``M_ii^2 - 1`` is ``expm1(2 log M_ii)``
  so that ``M_ii`` near 1 keeps its small difference, as in ``gaussian.kl_normal``.

  Args:
    log_m_diag: ``log M_ii``, shape ``[..., D]``.
    m_strict_lower: ``M`` below the diagonal (anything on and above it is ignored),
      ``[..., D, D]``.
    delta: ``[..., D]``.

  Returns:
    The KL, shape ``[...]``.
  """
  diag_terms = jnp.sum(jnp.expm1(2 * log_m_diag) - 2 * log_m_diag, -1)
  off_terms = jnp.sum(jnp.square(jnp.tril(m_strict_lower, -1)), (-2, -1))
  return 0.5 * (diag_terms + off_terms + jnp.sum(jnp.square(delta), -1))


def _log_diag(scale_tril: Array) -> Array:
  return jnp.log(jnp.diagonal(scale_tril, axis1=-2, axis2=-1))


def kl_full_cov_standard(q: FullCovGaussian) -> Array:
  """Closed-form ``KL(q || N(0, I))``, shape ``q.batch_shape``.

  ``1/2 (tr(L L^T) + |mu|^2 - D - 2 sum_i log L_ii)``: the general formula (``_kl_whitened``)
  with ``L_p = I``, so ``M = L`` and ``delta = mu``; ``tr(L L^T) = sum_ij L_ij^2``.
  """
  return _kl_whitened(_log_diag(q.scale_tril), q.scale_tril, q.loc)


def _check_event(name: str, q: FullCovGaussian, d_p: int) -> None:
  if q.event_shape[0] != d_p:
    raise ValueError(f"{name}: q has D = {q.event_shape[0]} but p has D = {d_p}; KL needs both "
                     "over the same latent dimension.")


def kl_full_cov(q: FullCovGaussian, p: FullCovGaussian) -> Array:
  """Closed-form ``KL(q || p)`` between two full-covariance Gaussians, by triangular solves.

  ``M = L_p^{-1} L_q`` and ``delta = L_p^{-1}(mu_q - mu_p)`` (two solves, never an inverse);
  ``KL = 1/2 [|M|_F^2 + |delta|^2 - D - 2 sum_i log M_ii]`` with ``log M_ii`` taken from the
  diagonals directly (derivation in ``_kl_whitened``). The only rounding error beyond the
  inputs' is the backward-stable forward substitution's, so float32 holds for D = 64 with a
  reasonably conditioned ``L_p`` (tests/test_full_cov_gaussian.py).

  Returns:
    The KL over the broadcast batch shape of ``q`` and ``p``.
  """
  _check_event("kl_full_cov", q, p.event_shape[0])
  m = _solve_lower(p.scale_tril, q.scale_tril)
  delta = _solve_lower(p.scale_tril, (q.loc - p.loc)[..., None])[..., 0]
  return _kl_whitened(_log_diag(q.scale_tril) - _log_diag(p.scale_tril), m, delta)


def kl_full_cov_diag(q: FullCovGaussian, p: Gaussian) -> Array:
  """Closed-form ``KL(q || p)`` to a factorized ``Gaussian(loc [..., D], scale [..., D])``.

  ``L_p = diag(s)``, so ``M = L_q / s`` row by row and ``delta = (mu_q - mu_p) / s``; then the
  general formula (``_kl_whitened``), summed over ``D``. With a diagonal ``L_q`` it is the sum of
  ``gaussian.kl_normal`` over the coordinates.

  Returns:
    The KL over the broadcast batch shape of ``q`` and ``p.batch_shape[:-1]``.
  """
  if not p.batch_shape:
    raise ValueError("kl_full_cov_diag: p needs loc and scale of shape [..., D]; got a scalar "
                     "Gaussian. Broadcast it to the latent dimension first.")
  _check_event("kl_full_cov_diag", q, p.batch_shape[-1])
  log_s = jnp.log(p.scale)
  m = q.scale_tril / p.scale[..., :, None]
  delta = (q.loc - p.loc) / p.scale
  return _kl_whitened(_log_diag(q.scale_tril) - log_s, m, delta)


registry.register_kl(FullCovGaussian, Gaussian)(kl_full_cov_diag)
registry.register_kl(FullCovGaussian, FullCovGaussian)(kl_full_cov)

INFO = registry.register_family(
    registry.FamilyInfo(
        name="full_cov_gaussian",
        cls=FullCovGaussian,
        event_ndim=1,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        transform=transform,
        num_raw=lambda d, options: num_raw(d),
        from_flat=lambda raw, d, options, shared: from_flat(raw, d),
        description="N(mu, L L^T), L = L* + diag(sigma): mean, strictly-lower L* and positive "
        "diagonal from the encoder",
    ))
