"""Inverse-autoregressive-flow (IAF) posterior: ``N(loc, diag(scale^2))`` followed by gated
autoregressive steps driven by MADE networks and a context from the encoder.

Per step a MADE network reads ``(z, h)`` with ``h`` the encoder's context vector and returns
``(m, s)`` with output ``i`` depending only on earlier coordinates of ``z`` in that step's
ordering; the gated update ``z <- sigma z + (1 - sigma) m``, ``sigma = sigmoid(s +
forget_bias)``, has a triangular Jacobian with diagonal ``sigma``, so a draw comes with its
density (``flow_base.py``). The trainer needs only ``transform``; ``log_prob`` at an arbitrary
``z`` runs the inverse (``iaf_inverse``, ``D`` sequential passes per step) and is meant for
evaluation and tests, so the registry has no ``log_prob`` for this family and a learned prior
for it is a factorized Gaussian. The MADE weights are shared by every example: the trainer
learns them with the networks (``init_shared``).

References:
  Kingma et al., Improved Variational Inference with Inverse Autoregressive Flow, NeurIPS 2016.
  Germain et al., MADE: Masked Autoencoder for Distribution Estimation, ICML 2015.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax.distributions import flow_base, heads, registry

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
MadeParams = Sequence[Mapping[str, Array]]

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


def made_init(key: Array,
              latent_dim: int,
              context_dim: int,
              hidden: int,
              num_steps: int,
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
        "w_z": normal(k_z, (d, h), d + c),
        "w_c": normal(k_c, (c, h), d + c),
        "b_h": jnp.zeros((h,), dtype),
        "w_m": normal(k_m, (h, d), h),
        "b_m": jnp.zeros((d,), dtype),
        "w_s": normal(k_s, (h, d), h),
        "b_s": jnp.zeros((d,), dtype),
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
  hidden = jax.nn.elu(
      jnp.asarray(z) @ (p["w_z"] * mask_in) + jnp.asarray(context) @ p["w_c"] + p["b_h"])
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
    expected = {
        "w_z": (d, h),
        "w_c": (c, h),
        "b_h": (h,),
        "w_m": (h, d),
        "b_m": (d,),
        "w_s": (h, d),
        "b_s": (d,)
    }
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

  def __init__(self,
               loc: ArrayLike,
               scale: ArrayLike,
               context: ArrayLike,
               made_params: MadeParams,
               *,
               forget_bias: float = 1.0):
    loc, scale, context = (jnp.asarray(x) for x in (loc, scale, context))
    dtype = jnp.result_type(loc, scale, context, float)
    loc, scale, context = (x.astype(dtype) for x in (loc, scale, context))
    if loc.ndim < 1 or scale.shape[-1:] != loc.shape[-1:] or context.ndim < 1:
      raise ValueError(
          f"IAF: loc and scale need shape [..., D] with the same D and context [..., C]; got "
          f"loc {loc.shape}, scale {scale.shape}, context {context.shape}.")
    flow_base.broadcast_batch("IAF", {
        "loc": loc.shape[:-1],
        "scale": scale.shape[:-1],
        "context": context.shape[:-1]
    })
    made_params = tuple(made_params) if isinstance(made_params, list) else made_params
    _check_made(made_params, loc.shape[-1], context.shape[-1])
    flow_base.check_positive(
        "IAF", "scale", scale, "Map unconstrained encoder outputs through iaf_from_flat or "
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
    return jnp.broadcast_shapes(self.loc.shape[:-1], self.scale.shape[:-1], self.context.shape[:-1])

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


def transform(dist: IAF, eps: ArrayLike) -> tuple[Array, Array]:
  """The flow applied to standard-normal noise: ``z`` and ``log q(z)``.

  Args:
    dist: an ``IAF``.
    eps: standard-normal noise, shape ``[..., D]`` broadcasting against the batch (e.g.
      ``[k, B, D]`` for a batch ``[B]``).

  Returns:
    ``(z, log_q)`` with shapes ``broadcast(eps, batch + [D])`` and the same without ``D``.
  """
  z, log_q = flow_base.base_draw(dist.loc, dist.scale, dist.batch_shape, eps)
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


def iaf_from_flat(raw: ArrayLike,
                  latent_dim: int,
                  context_dim: int,
                  made_params: MadeParams,
                  *,
                  forget_bias: float = 1.0) -> IAF:
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
    raise ValueError(f"iaf_from_flat: raw needs last axis iaf_num_raw({d}, {c}) = {n}; got shape "
                     f"{raw.shape}. Size the encoder's output layer with iaf_num_raw.")
  loc, scale, context = jnp.split(raw, [d, 2 * d], -1)
  return IAF(loc, heads.softplus_floor(scale), context, made_params, forget_bias=forget_bias)


def rsample_and_log_prob(key: Array, dist: IAF,
                         sample_shape: tuple[int, ...] = ()) -> tuple[Array, Array]:
  """Reparameterized draws ``sample_shape + batch + [D]`` and their log-density."""
  return flow_base.rsample_and_log_prob(key, dist, sample_shape, transform)


def rsample(key: Array, dist: IAF, sample_shape: tuple[int, ...] = ()) -> Array:
  """Reparameterized draws of shape ``sample_shape + batch + [D]``."""
  return rsample_and_log_prob(key, dist, sample_shape)[0]


def log_prob(dist: IAF, z: ArrayLike) -> Array:
  """``log q(z)`` at arbitrary points via ``iaf_inverse`` (``D`` passes per step), shape
  ``broadcast(z, batch + [D])[:-1]``; ``-inf`` where the base point is beyond the float range."""
  return flow_base.log_prob(dist, z, transform, iaf_inverse)


INFO = registry.register_family(
    registry.FamilyInfo(
        name="iaf",
        cls=IAF,
        event_ndim=1,
        rsample=rsample,
        transform=transform,
        num_raw=lambda d, options: iaf_num_raw(d, options["iaf_context"]),
        from_flat=lambda raw, d, options, shared: iaf_from_flat(raw, d, options["iaf_context"],
                                                                shared),
        init_shared=lambda key, d, options: made_init(key, d, options["iaf_context"], options[
            "iaf_hidden"], options["iaf_steps"]),
        description="diagonal Gaussian, then iaf_steps MADE steps z <- sigma z + (1 - sigma) m "
        "(the gated update) with the encoder's context h",
    ))
