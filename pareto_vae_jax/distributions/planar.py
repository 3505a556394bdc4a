"""Planar-flow posterior: ``N(loc, diag(scale^2))`` followed by ``K`` planar layers.

Each layer is ``f(z) = z + û tanh(w·z + b)`` (Rezende & Mohamed, 2015), with ``û`` built so
that ``w·û > -1`` and the layer stays invertible; its log-determinant is cheap, so a draw comes
with its density (``flow_base.py``). The trainer needs only ``transform`` (a draw from noise
with its log-density); ``log_prob`` at an arbitrary ``z`` runs the inverse (``planar_inverse``,
by bisection) and is meant for evaluation and tests, so the registry has no ``log_prob`` for
this family and a learned prior for it is a factorized Gaussian.

Example, in a trainer's loss (``encoder`` returns ``[B, planar_num_raw(D, K)]`` raw outputs)::

  q = planar.planar_from_flat(encoder(x), D, K)
  z, log_q = planar.rsample_and_log_prob(key, q, (num_draws,))   # [n, B, D], [n, B]
  kl = log_q - prior_log_prob(z).sum(-1)                          # Monte Carlo KL per draw

References:
  Rezende & Mohamed, Variational Inference with Normalizing Flows, ICML 2015 (appendix A.1 for
  the constraint on ``û``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax.distributions import flow_base, heads, registry

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

# Regularizes the planar constraint as |w| -> 0; see planar_u_hat.
_PLANAR_EPS = 1e-8


@jax.tree_util.register_pytree_node_class
class PlanarFlow:
  """``N(loc, diag(scale^2))`` followed by ``K`` planar layers ``z + û_k tanh(w_k·z + b_k)``.

  Args:
    loc: base mean, shape ``[..., D]``.
    scale: base standard deviation, > 0, shape ``[..., D]``.
    u: layer directions, shape ``[..., K, D]`` (made invertible by ``planar_u_hat``).
    w: layer normals, shape ``[..., K, D]``.
    b: layer offsets, shape ``[..., K]``.

  The leading (batch) axes of the five parameters need only broadcast: a flow shared by a batch
  of base Gaussians may give ``u``, ``w`` as ``[K, D]`` and ``b`` as ``[K]``.
  """

  event_ndim = 1

  def __init__(self, loc: ArrayLike, scale: ArrayLike, u: ArrayLike, w: ArrayLike, b: ArrayLike):
    loc, scale, u, w, b = (jnp.asarray(x) for x in (loc, scale, u, w, b))
    dtype = jnp.result_type(loc, scale, u, w, b, float)
    loc, scale, u, w, b = (x.astype(dtype) for x in (loc, scale, u, w, b))
    if loc.ndim < 1 or scale.shape[-1:] != loc.shape[-1:]:
      raise ValueError(
          f"PlanarFlow: loc and scale need shape [..., D] with the same D; got loc {loc.shape} "
          f"and scale {scale.shape}.")
    d = loc.shape[-1]
    if u.ndim < 2 or u.shape[-1] != d or w.shape[-2:] != u.shape[-2:]:
      raise ValueError(
          f"PlanarFlow: u and w need shape [..., K, D] with D = {d} (loc's last axis); got u "
          f"{u.shape} and w {w.shape}.")
    if b.ndim < 1 or b.shape[-1] != u.shape[-2]:
      raise ValueError(
          f"PlanarFlow: b needs shape [..., K] with K = {u.shape[-2]} (u's second-to-last "
          f"axis); got {b.shape}.")
    flow_base.broadcast_batch(
        "PlanarFlow", {
            "loc": loc.shape[:-1],
            "scale": scale.shape[:-1],
            "u": u.shape[:-2],
            "w": w.shape[:-2],
            "b": b.shape[:-1]
        })
    flow_base.check_positive(
        "PlanarFlow", "scale", scale,
        "Map unconstrained encoder outputs through planar_from_flat or "
        "pareto_vae_jax.softplus_floor.")
    self.loc, self.scale, self.u, self.w, self.b = loc, scale, u, w, b

  def tree_flatten(self):
    return (self.loc, self.scale, self.u, self.w, self.b), None

  @classmethod
  def tree_unflatten(cls, _, children):
    obj = object.__new__(cls)
    obj.loc, obj.scale, obj.u, obj.w, obj.b = children
    return obj

  @property
  def batch_shape(self) -> tuple[int, ...]:
    return jnp.broadcast_shapes(self.loc.shape[:-1], self.scale.shape[:-1], self.u.shape[:-2],
                                self.w.shape[:-2], self.b.shape[:-1])

  @property
  def event_shape(self) -> tuple[int, ...]:
    return self.loc.shape[-1:]

  @property
  def num_layers(self) -> int:
    return self.u.shape[-2]

  @property
  def dtype(self):
    return self.loc.dtype

  def __repr__(self) -> str:
    return (f"PlanarFlow({self.num_layers} layers, batch {self.batch_shape}, "
            f"event {self.event_shape})")


def _planar_u_hat_and_gap(u: Array, w: Array) -> tuple[Array, Array]:
  """``û`` and ``1 + w·û`` in closed form (see ``planar_u_hat``)."""
  wu = jnp.sum(w * u, -1, keepdims=True)
  ww = jnp.sum(w * w, -1, keepdims=True)
  softplus_wu = jax.nn.softplus(wu)
  # u minus its component along w. Below |w|^2 = sqrt(tiny) nothing is removed: there w·u is
  # negligible, and the gradient of wu / ww (~ |u| / |w|^2) would overflow.
  ww_safe = jnp.where(ww > math.sqrt(jnp.finfo(ww.dtype).tiny), ww, 1.0)
  u_perp = u - wu / ww_safe * w
  u_hat = u_perp + (softplus_wu - 1) / (ww + _PLANAR_EPS) * w
  # 1 + w·û = 1 + r m(w·u) with r = |w|^2 / (|w|^2 + eps), arranged as a sum of positive
  # terms: the dot product itself, for |u||w| >> 1, rounds to within a few ulps of -1 or below.
  gap = (_PLANAR_EPS + ww * softplus_wu) / (ww + _PLANAR_EPS)
  return u_hat, gap[..., 0]


def planar_u_hat(u: ArrayLike, w: ArrayLike) -> Array:
  """The direction ``û`` that makes a planar layer invertible (``w·û > -1``).

  Rezende & Mohamed (appendix A.1) replace the component of ``u`` along ``w`` so that
  ``w·û = m(w·u)`` with ``m(x) = -1 + softplus(x) > -1``. Here the new component is divided by
  ``|w|^2 + eps`` (``eps = 1e-8``) rather than ``|w|^2``, so that ``û`` stays bounded as
  ``w -> 0``; then ``w·û = m(w·u) |w|^2 / (|w|^2 + eps)``, still ``> -1``, and equal to the
  paper's value whenever ``|w|^2 >> 1e-8``. (Adding ``eps`` to the paper's single expression
  ``u + (m(w·u) - w·u) w / |w|^2`` instead would break the bound when ``w·u << -1``.)

  Args:
    u: shape ``[..., D]``.
    w: shape ``[..., D]``.

  Returns:
    ``û``, shape ``[..., D]``.
  """
  return _planar_u_hat_and_gap(jnp.asarray(u), jnp.asarray(w))[0]


def _planar_log_det(x: Array, gap: Array) -> Array:
  # det = 1 + tanh'(x) w·û = tanh(x)^2 + sech(x)^2 (1 + w·û): a sum of two non-negative terms
  # that is >= (1 + w·û) > 0 at x = 0 and -> 1 as |x| grows; sech^2 via exp(-2|x|) so that it
  # neither overflows nor loses its digits to 1 - tanh^2.
  t = jnp.exp(-2 * jnp.abs(x))
  sech2 = 4 * t / jnp.square(1 + t)
  return jnp.log(jnp.square(jnp.tanh(x)) + sech2 * gap)


def planar_layer(z: ArrayLike, u: ArrayLike, w: ArrayLike, b: ArrayLike) -> tuple[Array, Array]:
  """One planar layer ``f(z) = z + û tanh(w·z + b)`` and ``log|det df/dz|``.

  ``det df/dz = 1 + û·(tanh'(w·z + b) w)`` (matrix determinant lemma; Rezende & Mohamed eq. 12),
  positive because ``w·û > -1`` (``planar_u_hat``).

  Args:
    z: points, shape ``[..., D]``.
    u: shape ``[..., D]`` (the raw direction; ``û`` is formed here).
    w: shape ``[..., D]``.
    b: shape ``[...]``.

  Returns:
    ``(f(z), log_det)`` with shapes ``[..., D]`` and ``[...]`` (all inputs broadcast).
  """
  z, u, w, b = (jnp.asarray(x) for x in (z, u, w, b))
  u_hat, gap = _planar_u_hat_and_gap(u, w)
  x = jnp.sum(w * z, -1) + b
  return z + u_hat * jnp.tanh(x)[..., None], _planar_log_det(x, gap)


def _layers_first(dist: PlanarFlow) -> tuple[Array, Array, Array]:
  return jnp.moveaxis(dist.u, -2, 0), jnp.moveaxis(dist.w, -2, 0), jnp.moveaxis(dist.b, -1, 0)


def transform(dist: PlanarFlow, eps: ArrayLike) -> tuple[Array, Array]:
  """The flow applied to standard-normal noise: ``z`` and ``log q(z)``.

  Args:
    dist: a ``PlanarFlow``.
    eps: standard-normal noise, shape ``[..., D]`` broadcasting against the batch (e.g.
      ``[k, B, D]`` for a batch ``[B]``).

  Returns:
    ``(z, log_q)`` with shapes ``broadcast(eps, batch + [D])`` and the same without ``D``.
  """
  z, log_q = flow_base.base_draw(dist.loc, dist.scale, dist.batch_shape, eps)

  def layer(carry, params):
    z, log_q = carry
    z, log_det = planar_layer(z, *params)
    return (z, log_q - log_det), None

  (z, log_q), _ = jax.lax.scan(layer, (z, log_q), _layers_first(dist))
  return z, log_q


def planar_inverse(dist: PlanarFlow, z: ArrayLike, *, num_iters: int = 100) -> tuple[Array, Array]:
  """Inverts the planar layers: the base point ``z0`` and ``eps = (z0 - loc) / scale``.

  For a layer ``z' = z + û tanh(w·z + b)``, ``alpha = w·z`` solves the scalar equation
  ``g(alpha) = alpha + (w·û) tanh(alpha + b) - w·z' = 0``; ``g`` is non-decreasing because
  ``w·û > -1`` and its root lies in ``w·z' ± |w·û|``, so bisection finds it. A final Newton step
  from the (gradient-stopped) root carries the implicit-function gradient to ``z`` and the
  parameters. Then ``z = z' - û tanh(alpha + b)``.

  Args:
    dist: the flow.
    z: points, shape ``[..., D]`` broadcasting against the batch.
    num_iters: bisection steps per layer; 100 halvings reach float64 resolution for
      ``|w·û|`` up to ``1e12``.

  Returns:
    ``(z0, eps)``, each of shape ``broadcast(z, batch + [D])``.
  """
  z = jnp.asarray(z, dist.dtype)
  z = jnp.broadcast_to(z, jnp.broadcast_shapes(z.shape, dist.batch_shape + dist.event_shape))

  def layer(z_next, params):
    u, w, b = params
    u_hat, gap = _planar_u_hat_and_gap(u, w)
    c = jnp.sum(w * u_hat, -1)
    y = jnp.sum(w * z_next, -1)
    g = lambda alpha: alpha + c * jnp.tanh(alpha + b) - y

    def bisect(_, bracket):
      lo, hi = bracket
      mid = 0.5 * (lo + hi)
      above = g(mid) > 0
      return jnp.where(above, lo, mid), jnp.where(above, mid, hi)

    lo, hi = jax.lax.fori_loop(0, num_iters, bisect,
                               jax.lax.stop_gradient((y - jnp.abs(c), y + jnp.abs(c))))
    alpha = jax.lax.stop_gradient(0.5 * (lo + hi))
    # g'(alpha) is the layer's Jacobian determinant; its closed form never reaches 0.
    alpha = alpha - g(alpha) / jnp.exp(_planar_log_det(alpha + b, gap))
    return z_next - u_hat * jnp.tanh(alpha + b)[..., None], None

  z0, _ = jax.lax.scan(layer, z, _layers_first(dist), reverse=True)
  return z0, (z0 - dist.loc) / dist.scale


def planar_num_raw(latent_dim: int, num_layers: int) -> int:
  """Encoder outputs ``planar_from_flat`` needs: loc, scale, then ``u``, ``w``, ``b`` per layer."""
  return 2 * latent_dim + num_layers * (2 * latent_dim + 1)


def planar_from_flat(raw: ArrayLike, latent_dim: int, num_layers: int) -> PlanarFlow:
  """An amortized planar flow from unconstrained encoder outputs.

  Args:
    raw: shape ``[..., planar_num_raw(latent_dim, num_layers)]``, laid out as ``loc [D]``,
      ``scale [D]`` (through ``softplus_floor``, floor 1e-4), ``u [K, D]``, ``w [K, D]``,
      ``b [K]``.
    latent_dim: ``D``.
    num_layers: ``K``.

  Returns:
    A ``PlanarFlow`` with batch shape ``raw.shape[:-1]``.
  """
  raw = jnp.asarray(raw)
  d, k = latent_dim, num_layers
  n = planar_num_raw(d, k)
  if raw.ndim < 1 or raw.shape[-1] != n:
    raise ValueError(
        f"planar_from_flat: raw needs last axis planar_num_raw({d}, {k}) = {n}; got shape "
        f"{raw.shape}. Size the encoder's output layer with planar_num_raw.")
  batch = raw.shape[:-1]
  loc, scale, u, w, b = jnp.split(raw, np.cumsum([d, d, k * d, k * d]), -1)
  return PlanarFlow(loc, heads.softplus_floor(scale), u.reshape(batch + (k, d)),
                    w.reshape(batch + (k, d)), b)


def rsample_and_log_prob(
    key: Array, dist: PlanarFlow, sample_shape: tuple[int, ...] = ()) -> tuple[Array, Array]:
  """Reparameterized draws ``sample_shape + batch + [D]`` and their log-density."""
  return flow_base.rsample_and_log_prob(key, dist, sample_shape, transform)


def rsample(key: Array, dist: PlanarFlow, sample_shape: tuple[int, ...] = ()) -> Array:
  """Reparameterized draws of shape ``sample_shape + batch + [D]``."""
  return rsample_and_log_prob(key, dist, sample_shape)[0]


def log_prob(dist: PlanarFlow, z: ArrayLike) -> Array:
  """``log q(z)`` at arbitrary points via ``planar_inverse`` (a bisection per layer), shape
  ``broadcast(z, batch + [D])[:-1]``; ``-inf`` where the base point is beyond the float range."""
  return flow_base.log_prob(dist, z, transform, planar_inverse)


INFO = registry.register_family(
    registry.FamilyInfo(
        name="planar",
        cls=PlanarFlow,
        event_ndim=1,
        rsample=rsample,
        transform=transform,
        num_raw=lambda d, options: planar_num_raw(d, options["flow_layers"]),
        from_flat=lambda raw, d, options, shared: planar_from_flat(raw, d, options["flow_layers"]),
        description="diagonal Gaussian pushed through flow_layers planar layers (u, w, b per "
        "example; w.u_hat >= -1 keeps each invertible)",
    ))
