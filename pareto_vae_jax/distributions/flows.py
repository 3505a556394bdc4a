"""Normalizing-flow posteriors: planar flows and inverse autoregressive flows (IAF).

Both start from a diagonal Gaussian ``z0 = loc + scale * eps``, ``eps ~ N(0, I)``, and push it
through invertible maps whose log-determinants are cheap, so a draw comes with its density
(change of variables, the notes, eq. 18; see docs/REFERENCES.md):

    log q(z_K) = log N(eps; 0, I) - sum_d log scale_d - sum_k log|det df_k/dz_{k-1}|.

* Planar (Rezende & Mohamed, 2015): ``f(z) = z + û tanh(w·z + b)``, ``K`` layers.
* IAF (Kingma et al., 2016): per step a MADE network reads ``(z, h)`` with ``h`` a context vector
  from the encoder and returns ``(m, s)`` with output ``i`` depending only on earlier coordinates
  of ``z`` in that step's ordering; the gated update ``z <- sigma z + (1 - sigma) m``,
  ``sigma = sigmoid(s + forget_bias)``, has a triangular Jacobian with diagonal ``sigma``.

Densities are joint over the last axis (``event_ndim = 1``): draws have shape
``sample_shape + batch + [D]`` and log-densities ``sample_shape + batch``. The trainer needs only
``rsample_and_log_prob``; ``log_prob`` at an arbitrary ``z`` runs the inverse (``planar_inverse``
by bisection, ``iaf_inverse`` by ``D`` sequential passes) and is meant for evaluation and tests.

Example, in a trainer's loss (``encoder`` returns ``[B, planar_num_raw(D, K)]`` raw outputs)::

  q = flows.planar_from_flat(encoder(x), D, K)
  z, log_q = flows.rsample_and_log_prob(key, q, (num_draws,))   # [n, B, D], [n, B]
  kl = log_q - prior_log_prob(z).sum(-1)                         # Monte Carlo KL per draw

References:
  Rezende & Mohamed, Variational Inference with Normalizing Flows, ICML 2015 (appendix A.1 for
  the constraint on ``û``).
  Kingma et al., Improved Variational Inference with Inverse Autoregressive Flow, NeurIPS 2016.
  Germain et al., MADE: Masked Autoencoder for Distribution Estimation, ICML 2015.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax.distributions import heads

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
MadeParams = Sequence[Mapping[str, Array]]

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

# Regularizes the planar constraint as |w| -> 0; see planar_u_hat.
_PLANAR_EPS = 1e-8


def _is_concrete(x: Any) -> bool:
  return not isinstance(x, jax.core.Tracer)


def _check_positive(cls_name: str, name: str, value: Array, fix: str) -> None:
  if _is_concrete(value):
    bad = ~(np.asarray(value) > 0)
    if bad.any():
      raise ValueError(
          f"{cls_name}: parameter '{name}' must be > 0 everywhere; got "
          f"{np.asarray(value)[bad].ravel()[:3]} at {int(bad.sum())} position(s). {fix}")


def _broadcast_batch(cls_name: str, parts: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
  try:
    return jnp.broadcast_shapes(*parts.values())
  except ValueError:
    described = ", ".join(f"{k} {v}" for k, v in parts.items())
    raise ValueError(
        f"{cls_name}: the batch shapes of the parameters do not broadcast ({described}). Give "
        "every parameter the same leading batch axes, or leave shared ones without them."
    ) from None


def _standard_normal_log_prob(eps: Array) -> Array:
  return jnp.sum(-0.5 * eps * eps - _HALF_LOG_2PI, -1)


def _base_draw(loc: Array, scale: Array, batch_shape: tuple[int, ...],
               eps: ArrayLike) -> tuple[Array, Array]:
  """``z0 = loc + scale * eps``, shape ``[..., batch, D]``, and ``log q0(z0)``, ``[..., batch]``."""
  eps = jnp.asarray(eps, loc.dtype)
  z = loc + scale * eps
  z = jnp.broadcast_to(z, jnp.broadcast_shapes(z.shape, batch_shape + loc.shape[-1:]))
  log_q = _standard_normal_log_prob(eps) - jnp.sum(jnp.log(scale), -1)
  return z, jnp.broadcast_to(log_q, z.shape[:-1])


# ---------------------------------------------------------------------------------------------
# Planar flows.


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

  def __init__(self, loc: ArrayLike, scale: ArrayLike, u: ArrayLike, w: ArrayLike,
               b: ArrayLike):
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
    _broadcast_batch("PlanarFlow", {
        "loc": loc.shape[:-1], "scale": scale.shape[:-1], "u": u.shape[:-2],
        "w": w.shape[:-2], "b": b.shape[:-1]})
    _check_positive("PlanarFlow", "scale", scale,
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
    return jnp.broadcast_shapes(self.loc.shape[:-1], self.scale.shape[:-1],
                                self.u.shape[:-2], self.w.shape[:-2], self.b.shape[:-1])

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


def _planar_transform(dist: PlanarFlow, eps: ArrayLike) -> tuple[Array, Array]:
  z, log_q = _base_draw(dist.loc, dist.scale, dist.batch_shape, eps)

  def layer(carry, params):
    z, log_q = carry
    z, log_det = planar_layer(z, *params)
    return (z, log_q - log_det), None

  (z, log_q), _ = jax.lax.scan(layer, (z, log_q), _layers_first(dist))
  return z, log_q


def planar_inverse(dist: PlanarFlow, z: ArrayLike, *,
                   num_iters: int = 100) -> tuple[Array, Array]:
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


# ---------------------------------------------------------------------------------------------
# Inverse autoregressive flows.

_MADE_KEYS = ("w_z", "w_c", "b_h", "w_m", "b_m", "w_s", "b_s")


def _made_degrees(latent_dim: int, step: int) -> np.ndarray:
  """Position of each coordinate in the ordering of ``step`` (1-based; reversed on odd steps)."""
  degrees = np.arange(1, latent_dim + 1)
  return degrees[::-1] if step % 2 else degrees


def _made_masks(latent_dim: int, hidden: int, step: int) -> tuple[np.ndarray, np.ndarray]:
  """MADE masks (Germain et al., eq. 12-13) for the ordering of ``step``.

  Input ``z_j`` has degree ``j + 1`` on even steps and ``D - j`` on odd ones (the ordering is
  reversed between steps); output ``i`` has the degree of ``z_i``. Hidden unit ``k`` has degree
  ``k mod D`` in ``0..D-1`` and sees the inputs of degree ``<=`` its own; it feeds the outputs of
  degree ``>`` its own. Units of degree 0 see only the context and feed every output, so that the
  first output in the ordering also depends on the context. Constants of the shapes, never
  trained.
  """
  degrees = _made_degrees(latent_dim, step)
  hidden_degrees = np.arange(hidden) % latent_dim
  mask_in = degrees[:, None] <= hidden_degrees[None, :]
  mask_out = hidden_degrees[:, None] < degrees[None, :]
  return mask_in, mask_out


def made_init(key: Array, latent_dim: int, context_dim: int, hidden: int, num_steps: int,
              dtype=jnp.float32) -> tuple[dict[str, Array], ...]:
  """Parameters of ``num_steps`` MADE networks ``[z, h] -> hidden -> (m, s)``.

  Weights are LeCun-normal (variance 1 / fan-in), biases zero. The masks are not stored: they
  are constants recomputed by ``made_apply`` from the shapes and the step index.

  Args:
    key: PRNG key.
    latent_dim: ``D``.
    context_dim: ``C``, the size of the encoder's context ``h`` (may be 0).
    hidden: hidden units per step.
    num_steps: IAF steps (may be 0: the flow is then the base Gaussian).
    dtype: of the parameters.

  Returns:
    A tuple with one dict per step: ``w_z [D, H]``, ``w_c [C, H]``, ``b_h [H]``, ``w_m [H, D]``,
    ``b_m [D]``, ``w_s [H, D]``, ``b_s [D]``.
  """
  if latent_dim < 1 or context_dim < 0 or hidden < 1 or num_steps < 0:
    raise ValueError(
        f"made_init: need latent_dim >= 1, context_dim >= 0, hidden >= 1 and num_steps >= 0; "
        f"got {latent_dim}, {context_dim}, {hidden}, {num_steps}.")
  d, c, h = latent_dim, context_dim, hidden

  def normal(k, shape, fan_in):
    return jax.random.normal(k, shape, dtype) / math.sqrt(fan_in)

  params = []
  for step_key in jax.random.split(key, num_steps):
    k_z, k_c, k_m, k_s = jax.random.split(step_key, 4)
    params.append({
        "w_z": normal(k_z, (d, h), d + c), "w_c": normal(k_c, (c, h), d + c),
        "b_h": jnp.zeros((h,), dtype),
        "w_m": normal(k_m, (h, d), h), "b_m": jnp.zeros((d,), dtype),
        "w_s": normal(k_s, (h, d), h), "b_s": jnp.zeros((d,), dtype),
    })
  return tuple(params)


def made_apply(step_params: Mapping[str, Array], z: ArrayLike, context: ArrayLike,
               step: int) -> tuple[Array, Array]:
  """One MADE network: ``(m, s)`` with ``m_i, s_i`` functions of the earlier ``z_j`` only.

  Args:
    step_params: one entry of ``made_init``'s tuple.
    z: shape ``[..., D]``.
    context: shape ``[..., C]``, broadcasting against ``z``'s leading axes.
    step: the step index; its parity picks the ordering (see ``_made_masks``).

  Returns:
    ``(m, s)``, each of shape ``[..., D]``.
  """
  p = step_params
  mask_in, mask_out = _made_masks(p["w_z"].shape[0], p["w_z"].shape[1], step)
  hidden = jax.nn.elu(jnp.asarray(z) @ (p["w_z"] * mask_in) + jnp.asarray(context) @ p["w_c"]
                      + p["b_h"])
  return hidden @ (p["w_m"] * mask_out) + p["b_m"], hidden @ (p["w_s"] * mask_out) + p["b_s"]


def _check_made(made_params: Any, latent_dim: int, context_dim: int) -> None:
  fix = (f"Create them with made_init(key, latent_dim={latent_dim}, "
         f"context_dim={context_dim}, ...).")
  if not isinstance(made_params, (tuple, list)) or not all(
      isinstance(p, Mapping) and set(p) == set(_MADE_KEYS) for p in made_params):
    raise ValueError(
        f"IAF: made_params must be a tuple of dicts with keys {_MADE_KEYS}, one per step. {fix}")
  for step, p in enumerate(made_params):
    h = p["w_z"].shape[-1] if p["w_z"].ndim == 2 else -1
    d, c = latent_dim, context_dim
    expected = {"w_z": (d, h), "w_c": (c, h), "b_h": (h,), "w_m": (h, d), "b_m": (d,),
                "w_s": (h, d), "b_s": (d,)}
    got = {k: tuple(p[k].shape) for k in _MADE_KEYS}
    if h < 1 or got != expected:
      raise ValueError(
          f"IAF: made_params step {step} has shapes {got}; latent dim {d} (loc's last axis) and "
          f"context dim {c} (context's last axis) need {expected}, unbatched. {fix}")


@jax.tree_util.register_pytree_node_class
class IAF:
  """``N(loc, diag(scale^2))`` followed by IAF steps driven by MADE networks and a context.

  Args:
    loc: base mean, shape ``[..., D]``.
    scale: base standard deviation, > 0, shape ``[..., D]``.
    context: the encoder's context ``h``, shape ``[..., C]`` (``C`` may be 0).
    made_params: ``made_init``'s tuple, shared by the whole batch (no batch axes).
    forget_bias: added to ``s`` before the sigmoid gate. The default 1.0 starts an untrained
      step near the identity: the gate opens at ``sigmoid(1) ~ 0.73`` rather than 0.5, so
      ``z <- 0.73 z + 0.27 m`` keeps most of ``z`` (Kingma et al. start ``s`` near +1 or +2).
  """

  event_ndim = 1

  def __init__(self, loc: ArrayLike, scale: ArrayLike, context: ArrayLike,
               made_params: MadeParams, *, forget_bias: float = 1.0):
    loc, scale, context = (jnp.asarray(x) for x in (loc, scale, context))
    dtype = jnp.result_type(loc, scale, context, float)
    loc, scale, context = (x.astype(dtype) for x in (loc, scale, context))
    if loc.ndim < 1 or scale.shape[-1:] != loc.shape[-1:] or context.ndim < 1:
      raise ValueError(
          f"IAF: loc and scale need shape [..., D] with the same D and context [..., C]; got "
          f"loc {loc.shape}, scale {scale.shape}, context {context.shape}.")
    _broadcast_batch("IAF", {"loc": loc.shape[:-1], "scale": scale.shape[:-1],
                         "context": context.shape[:-1]})
    made_params = tuple(made_params) if isinstance(made_params, list) else made_params
    _check_made(made_params, loc.shape[-1], context.shape[-1])
    _check_positive("IAF", "scale", scale,
                    "Map unconstrained encoder outputs through iaf_from_flat or "
                    "pareto_vae_jax.softplus_floor.")
    self.loc, self.scale, self.context, self.made_params = loc, scale, context, made_params
    self.forget_bias = float(forget_bias)

  def tree_flatten(self):
    return (self.loc, self.scale, self.context, self.made_params), self.forget_bias

  @classmethod
  def tree_unflatten(cls, forget_bias, children):
    obj = object.__new__(cls)
    obj.loc, obj.scale, obj.context, obj.made_params = children
    obj.forget_bias = forget_bias
    return obj

  @property
  def batch_shape(self) -> tuple[int, ...]:
    return jnp.broadcast_shapes(self.loc.shape[:-1], self.scale.shape[:-1],
                                self.context.shape[:-1])

  @property
  def event_shape(self) -> tuple[int, ...]:
    return self.loc.shape[-1:]

  @property
  def num_steps(self) -> int:
    return len(self.made_params)

  @property
  def dtype(self):
    return self.loc.dtype

  def __repr__(self) -> str:
    return (f"IAF({self.num_steps} steps, batch {self.batch_shape}, event {self.event_shape}, "
            f"context {self.context.shape[-1]})")


def _iaf_gate(dist: IAF, z: Array, step: int) -> tuple[Array, Array]:
  """``m`` and the gate's pre-activation ``g = s + forget_bias`` at ``z``."""
  m, s = made_apply(dist.made_params[step], z, dist.context, step)
  return m, s + dist.forget_bias


def _iaf_transform(dist: IAF, eps: ArrayLike) -> tuple[Array, Array]:
  z, log_q = _base_draw(dist.loc, dist.scale, dist.batch_shape, eps)
  for step in range(dist.num_steps):
    m, g = _iaf_gate(dist, z, step)
    # z <- sigma z + (1 - sigma) m (Kingma et al., eq. 14), with 1 - sigma = sigmoid(-g)
    # exact when sigma ~ 1, and log sigma = -softplus(-g) finite for any g.
    z = jax.nn.sigmoid(g) * z + jax.nn.sigmoid(-g) * m
    log_q = log_q + jnp.sum(jax.nn.softplus(-g), -1)
  return z, log_q


def iaf_inverse(dist: IAF, z: ArrayLike) -> tuple[Array, Array]:
  """Inverts the IAF steps: the base point ``z0`` and ``eps = (z0 - loc) / scale``.

  A step ``z' = sigma(z) z + (1 - sigma(z)) m(z)`` with ``sigma_i, m_i`` depending on the earlier
  coordinates only is undone by ``D`` passes of ``z_i <- (z'_i - (1 - sigma_i(z)) m_i(z)) /
  sigma_i(z)``, pass ``n`` solving the ``n``-th coordinate in the step's ordering from the ``n - 1``
  before it. Each pass writes only its own coordinate: updating all of them would fill the
  unsolved ones with values that can overflow, and a masked weight 0 times ``inf`` is ``nan``.

  Args:
    dist: the flow.
    z: points, shape ``[..., D]`` broadcasting against the batch.

  Returns:
    ``(z0, eps)``, each of shape ``broadcast(z, batch + [D])``.
  """
  z = jnp.asarray(z, dist.dtype)
  z = jnp.broadcast_to(z, jnp.broadcast_shapes(z.shape, dist.batch_shape + dist.event_shape))
  for step in reversed(range(dist.num_steps)):
    z_next = z
    degrees = _made_degrees(z.shape[-1], step)
    for position in range(1, z.shape[-1] + 1):
      m, g = _iaf_gate(dist, z, step)
      z = jnp.where(degrees == position, (z_next - jax.nn.sigmoid(-g) * m) / jax.nn.sigmoid(g), z)
  return z, (z - dist.loc) / dist.scale


def iaf_num_raw(latent_dim: int, context_dim: int) -> int:
  """Encoder outputs ``iaf_from_flat`` needs: loc, scale and the context."""
  return 2 * latent_dim + context_dim


def iaf_from_flat(raw: ArrayLike, latent_dim: int, context_dim: int, made_params: MadeParams,
                  *, forget_bias: float = 1.0) -> IAF:
  """An amortized IAF from unconstrained encoder outputs and shared MADE parameters.

  Args:
    raw: shape ``[..., iaf_num_raw(latent_dim, context_dim)]``, laid out as ``loc [D]``,
      ``scale [D]`` (through ``softplus_floor``, floor 1e-4), context ``h [C]``.
    latent_dim: ``D``.
    context_dim: ``C``.
    made_params: ``made_init(key, latent_dim, context_dim, ...)``.
    forget_bias: see ``IAF``.

  Returns:
    An ``IAF`` with batch shape ``raw.shape[:-1]``.
  """
  raw = jnp.asarray(raw)
  d, c = latent_dim, context_dim
  n = iaf_num_raw(d, c)
  if raw.ndim < 1 or raw.shape[-1] != n:
    raise ValueError(
        f"iaf_from_flat: raw needs last axis iaf_num_raw({d}, {c}) = {n}; got shape "
        f"{raw.shape}. Size the encoder's output layer with iaf_num_raw.")
  loc, scale, context = jnp.split(raw, [d, 2 * d], -1)
  return IAF(loc, heads.softplus_floor(scale), context, made_params, forget_bias=forget_bias)


# ---------------------------------------------------------------------------------------------
# Both flows.

Flow = PlanarFlow | IAF

_TRANSFORMS = {PlanarFlow: _planar_transform, IAF: _iaf_transform}
_INVERSES = {PlanarFlow: planar_inverse, IAF: iaf_inverse}


def _lookup(table: Mapping[type, Any], dist: Any):
  try:
    return table[type(dist)]
  except KeyError:
    raise TypeError(
        f"Expected a PlanarFlow or an IAF; got {type(dist).__name__}. Build one with "
        "planar_from_flat or iaf_from_flat.") from None


def transform(dist: Flow, eps: ArrayLike) -> tuple[Array, Array]:
  """The flow applied to standard-normal noise: ``z`` and ``log q(z)``.

  Args:
    dist: a ``PlanarFlow`` or an ``IAF``.
    eps: standard-normal noise, shape ``[..., D]`` broadcasting against the batch (e.g.
      ``[k, B, D]`` for a batch ``[B]``).

  Returns:
    ``(z, log_q)`` with shapes ``broadcast(eps, batch + [D])`` and the same without ``D``.
  """
  return _lookup(_TRANSFORMS, dist)(dist, eps)


def rsample_and_log_prob(key: Array, dist: Flow,
                         sample_shape: tuple[int, ...] = ()) -> tuple[Array, Array]:
  """Reparameterized draws ``sample_shape + batch + [D]`` and their log-density."""
  eps = jax.random.normal(key, tuple(sample_shape) + dist.batch_shape + dist.event_shape,
                          dist.dtype)
  return transform(dist, eps)


def rsample(key: Array, dist: Flow, sample_shape: tuple[int, ...] = ()) -> Array:
  """Reparameterized draws of shape ``sample_shape + batch + [D]``."""
  return rsample_and_log_prob(key, dist, sample_shape)[0]


def log_prob(dist: Flow, z: ArrayLike) -> Array:
  """``log q(z)`` at arbitrary points via the inverse, shape ``broadcast(z, batch + [D])[:-1]``.

  Costs an inversion (bisection per planar layer, ``D`` passes per IAF step); the trainer
  never needs it, since draws come with their density. Where a strongly contracting flow sends
  ``z`` back to a base point beyond the floating-point range, the density has underflowed and
  the result is ``-inf``.
  """
  eps = _lookup(_INVERSES, dist)(dist, z)[1]
  log_q = transform(dist, eps)[1]
  return jnp.where(jnp.all(jnp.isfinite(eps), -1), log_q, -jnp.inf)
