"""Finite mixtures of factorized latent distributions: the VampPrior and learnable mixture priors.

``Mixture(logits, components)``: ``components`` is any registered family with batch shape
``[..., K, D]`` and ``logits`` has shape ``[..., K]``; the density is

    p(z) = sum_k softmax(logits)_k prod_d c_kd(z_d),    z in R^D (or (0, inf)^D).

Unlike the families, whose functions are elementwise, a mixture's density is joint over its last
axis (``event_ndim = 1``): ``log_prob(mix, z)`` takes ``z`` of shape ``[..., D]`` and returns
``[...]``. With components ``q(z | u_k)`` from an encoder at pseudo-inputs ``u_k`` and equal
weights this is the VampPrior (Tomczak & Welling, 2018); with Pareto components, the mixture of
Paretos the guide proposes (section 6.3). There is no closed-form KL to a mixture: the trainer
uses the Monte Carlo estimate. A mixture is registered as a prior-only family (no ``--latent``
choice), drawn and scored in log space where its components are positive.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pareto_vae_jax.distributions import base, registry

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


@jax.tree_util.register_pytree_node_class
class Mixture:
  """A mixture of ``K`` factorized components over the last axis.

  Args:
    logits: unnormalized log-weights, shape ``[..., K]``.
    components: a registered distribution with batch shape ``[..., K, D]``.
  """

  event_ndim = 1

  def __init__(self, logits: ArrayLike, components: base.Distribution):
    logits = jnp.asarray(logits)
    shape = components.batch_shape
    if len(shape) < 2 or logits.shape[-1:] != shape[-2:-1]:
      raise ValueError(
          f"Mixture: components need batch shape [..., K, D] and logits [..., K]; got components "
          f"{shape} and logits {logits.shape}.")
    self.logits = logits
    self.components = components

  def tree_flatten(self):
    return (self.logits, self.components), None

  @classmethod
  def tree_unflatten(cls, _, children):
    obj = object.__new__(cls)
    obj.logits, obj.components = children
    return obj

  @property
  def num_components(self) -> int:
    return self.components.batch_shape[-2]

  @property
  def batch_shape(self) -> tuple[int, ...]:
    return self.components.batch_shape[:-2]

  @property
  def event_shape(self) -> tuple[int, ...]:
    return self.components.batch_shape[-1:]

  def __repr__(self) -> str:
    return (f"Mixture({self.num_components} x {type(self.components).__name__}, "
            f"batch {self.batch_shape}, event {self.event_shape})")


def is_positive(mix: Mixture) -> bool:
  """Whether the components live on (0, inf), so draws and densities can work in log space."""
  return base.family_info(mix.components).rsample_log is not None


def _joint(mix: Mixture, component_log_prob: Array) -> Array:
  # component_log_prob: [..., K, D] -> log sum_k w_k prod_d c_kd, shape [...].
  return jax.nn.logsumexp(jax.nn.log_softmax(mix.logits, -1) + component_log_prob.sum(-1), -1)


def log_prob(mix: Mixture, z: ArrayLike) -> Array:
  """Joint log-density at ``z`` of shape ``[..., D]`` (broadcast against the batch)."""
  return _joint(mix, base.log_prob(mix.components, jnp.asarray(z)[..., None, :]))


def log_prob_log(mix: Mixture, log_z: ArrayLike) -> Array:
  """Joint log-density of ``z = exp(log_z)`` (positive components), without forming ``z``."""
  return _joint(mix, base.log_prob_log(mix.components, jnp.asarray(log_z)[..., None, :]))


def _select(key: Array, mix: Mixture, draws: Array, sample_shape: tuple[int, ...]) -> Array:
  # draws: sample_shape + [..., K, D]; one component per draw, picked by its weight.
  k = jax.random.categorical(key, mix.logits, shape=sample_shape + mix.batch_shape)
  return jnp.take_along_axis(draws, k[..., None, None], axis=-2)[..., 0, :]


def rsample(key: Array, mix: Mixture, sample_shape: tuple[int, ...] = ()) -> Array:
  """Draws of shape ``sample_shape + batch + [D]``.

  Reparameterized within the chosen component; the choice itself carries no gradient (prior
  samples for pictures need none; training never samples the prior).
  """
  key_pick, key_draw = jax.random.split(key)
  return _select(key_pick, mix, base.rsample(key_draw, mix.components, sample_shape),
                 tuple(sample_shape))


def rsample_log(key: Array, mix: Mixture, sample_shape: tuple[int, ...] = ()) -> Array:
  """``log z`` of ``rsample``'s draws, for positive components."""
  key_pick, key_draw = jax.random.split(key)
  return _select(key_pick, mix, base.rsample_log(key_draw, mix.components, sample_shape),
                 tuple(sample_shape))


def mean(mix: Mixture) -> Array:
  """``E[z]``, shape ``batch + [D]`` (``inf`` where a component's mean is)."""
  w = jax.nn.softmax(mix.logits, -1)[..., None]
  return jnp.sum(w * base.mean(mix.components), -2)


def variance(mix: Mixture) -> Array:
  """Per-dimension ``Var[z_d]`` by the law of total variance, shape ``batch + [D]``."""
  w = jax.nn.softmax(mix.logits, -1)[..., None]
  m = base.mean(mix.components)
  mu = jnp.sum(w * m, -2, keepdims=True)
  return jnp.sum(w * (base.variance(mix.components) + jnp.square(m - mu)), -2)


INFO = registry.register_family(
    registry.FamilyInfo(
        name="mixture",
        cls=Mixture,
        event_ndim=1,
        prior_only=True,
        rsample=rsample,
        log_prob=log_prob,
        mean=mean,
        variance=variance,
        rsample_log=rsample_log,
        log_prob_log=log_prob_log,
        log_space=is_positive,
    ))
