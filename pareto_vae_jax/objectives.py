"""Training objectives: reconstruction likelihoods, the ELBO, the IWAE bound and KL schedules.

Pure functions in the style of ``optax.losses``: arrays in, per-example values out, reduction
left to the caller. The one exception is ``free_bits``, whose floor applies to a batch mean.
Every function is safe under ``jit``, ``vmap`` and ``grad``; shape checks read only static
shapes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax import distributions

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _event_axes(shape: tuple[int, ...], event_ndim: int, fn_name: str) -> tuple[int, ...]:
  """The trailing ``event_ndim`` axes of ``shape``, or a ValueError naming the fix."""
  if not 0 <= event_ndim <= len(shape):
    raise ValueError(
        f"{fn_name}: event_ndim={event_ndim} but the inputs broadcast to shape {shape} with "
        f"{len(shape)} axes. Pass event_ndim equal to the number of trailing axes that make one "
        "example (3 for images [..., H, W, C], 1 for flat vectors [..., D]).")
  return tuple(range(len(shape) - event_ndim, len(shape)))


def bernoulli_log_likelihood(logits: ArrayLike, x: ArrayLike, *, event_ndim: int = 3) -> Array:
  """Bernoulli decoder log-likelihood ``log p(x|z)``, i.e. minus the binary cross-entropy.

  For binarized ``x`` this is the log-probability mass; for intensities in ``[0, 1]`` it is the
  usual (unnormalized) cross-entropy likelihood of MNIST VAEs. ``logits`` and ``x`` broadcast,
  so decoder outputs with a leading sample axis ``[k, batch, ...]`` pair with ``x [batch, ...]``.

  Args:
    logits: decoder outputs, shape ``[*batch, *event]``.
    x: targets in ``[0, 1]``, broadcastable against ``logits``.
    event_ndim: number of trailing axes summed over (one example's pixels).

  Returns:
    ``log p(x|z)`` of shape ``[*batch]`` (the broadcast shape less its last ``event_ndim`` axes),
    ``<= 0``.

  Example:
    >>> import jax.numpy as jnp
    >>> from pareto_vae_jax import objectives
    >>> ll = objectives.bernoulli_log_likelihood(jnp.zeros(4), jnp.ones(4), event_ndim=1)
    >>> round(float(ll), 4)  # 4 log(1/2)
    -2.7726
  """
  logits = jnp.asarray(logits)
  x = jnp.asarray(x)
  # Bernoulli log-pmf x log s(l) + (1 - x) log s(-l) with s the sigmoid. With
  # log s(l) = -relu(-l) - t and log s(-l) = -relu(l) - t, t = log1p(exp(-|l|)), it is
  # -(t + x relu(-l) + (1 - x) relu(l)): one exp and one log1p per pixel, s(l) never formed
  # (it rounds to 0 or 1, log 0 = -inf, for |l| > ~17 in float32), and tiny losses keep full
  # relative precision (t itself), which x l - softplus(l) loses to cancellation.
  t = jnp.log1p(jnp.exp(-jnp.abs(logits)))
  per_element = -(t + x * jax.nn.relu(-logits) + (1 - x) * jax.nn.relu(logits))
  return jnp.sum(per_element,
                 axis=_event_axes(per_element.shape, event_ndim, "bernoulli_log_likelihood"))


def gaussian_log_likelihood(mean: ArrayLike,
                            x: ArrayLike,
                            *,
                            scale: ArrayLike = 1.0,
                            event_ndim: int = 3) -> Array:
  """Gaussian decoder log-likelihood ``log p(x|z) = sum log N(x; mean, scale^2)``.

  Args:
    mean: decoder outputs, shape ``[*batch, *event]``.
    x: targets, broadcastable against ``mean``.
    scale: observation standard deviation, > 0; a scalar or any shape that broadcasts (e.g. a
      learned per-pixel scale).
    event_ndim: number of trailing axes summed over.

  Returns:
    ``log p(x|z)`` of shape ``[*batch]``.
  """
  per_element = distributions.log_prob(distributions.Gaussian(mean, scale), x)
  return jnp.sum(per_element,
                 axis=_event_axes(per_element.shape, event_ndim, "gaussian_log_likelihood"))


def sequence_log_likelihood(out: ArrayLike,
                            x: ArrayLike,
                            *,
                            feature: str = "sigmoid",
                            scale: ArrayLike = 1.0) -> Array:
  """log p(x | z) of sequences (``sequences``' layout), summed over each sequence's steps.

  ``x`` is ``[*batch, T, V + 1]``: a one-hot type over V types (the last one end-of-sequence)
  and a feature per step, padding rows all zero; ``out`` the decoder's ``[*batch, T, V + 1]``:
  V type logits and the feature's pre-activation. Per step: the categorical log-probability
  of the type (cross-entropy with the softmax) plus, for the feature, with ``feature =
  "sigmoid"`` the Bernoulli log-likelihood at the sigmoid (the binary cross-entropy; for a
  feature strictly between 0 and 1 not a normalized density, as the MNIST BCE), with
  ``"relu"`` the Gaussian ``log N(f; relu(pre), scale^2)``. Steps beyond a sequence's EOS
  (padding) add nothing, to the value or to the gradients.

  Returns:
    ``[*batch]``.
  """
  out, x = jnp.asarray(out, jnp.float32), jnp.asarray(x, jnp.float32)
  num_types = x.shape[-1] - 1
  one_hot, f, pre = x[..., :num_types], x[..., num_types], out[..., num_types]
  mask = jnp.sum(one_hot, -1) > 0
  type_ll = jnp.sum(one_hot * jax.nn.log_softmax(out[..., :num_types]), -1)
  if feature == "sigmoid":
    feature_ll = f * jax.nn.log_sigmoid(pre) + (1 - f) * jax.nn.log_sigmoid(-pre)
  elif feature == "relu":
    feature_ll = distributions.log_prob(distributions.Gaussian(jax.nn.relu(pre), scale), f)
  else:
    raise ValueError(f"Unknown sequence feature '{feature}'; valid: sigmoid, relu.")
  return jnp.sum(jnp.where(mask, type_ll + feature_ll, 0.0), -1)


def sequence_mean(out: ArrayLike, *, feature: str = "sigmoid") -> Array:
  """The mean of ``sequence_log_likelihood``'s p(x | z) per step: type probabilities and the
  feature's mean (``sigmoid`` or ``relu`` of its pre-activation). All-zero rows (the padding a
  free-running decoder leaves after EOS) stay zero, as padding is in the data."""
  out = jnp.asarray(out, jnp.float32)
  act = jax.nn.sigmoid if feature == "sigmoid" else jax.nn.relu
  mean = jnp.concatenate([jax.nn.softmax(out[..., :-1], -1), act(out[..., -1:])], -1)
  return jnp.where(jnp.any(out != 0, -1, keepdims=True), mean, 0.0)


def mean_squared_error(pred: ArrayLike, x: ArrayLike, *, event_ndim: int = 3) -> Array:
  """Per-example squared error averaged over the event axes.

  The heavy-tail study's reconstruction term: its loss is ``L = 1/2 (MSE + beta KL)`` with this
  MSE and the KL summed over latent dimensions, per example.

  Args:
    pred: reconstructions, shape ``[*batch, *event]``.
    x: targets, broadcastable against ``pred``.
    event_ndim: number of trailing axes averaged over.

  Returns:
    The MSE of shape ``[*batch]``, ``>= 0``.
  """
  per_element = jnp.square(jnp.asarray(pred) - jnp.asarray(x))
  return jnp.mean(per_element,
                  axis=_event_axes(per_element.shape, event_ndim, "mean_squared_error"))


def sum_squared_error(pred: ArrayLike, x: ArrayLike, *, event_ndim: int = 3) -> Array:
  """Per-example squared error summed over the event axes (``mean_squared_error`` times size).

  The scale on which the heavy-tail study's MNIST reconstruction errors (5.6 for a Normal
  latent at beta = 0.01) are plausible: the per-pixel mean of a VAE that good is ~0.01.
  """
  per_element = jnp.square(jnp.asarray(pred) - jnp.asarray(x))
  return jnp.sum(per_element, axis=_event_axes(per_element.shape, event_ndim, "sum_squared_error"))


def kl_warmup(step: ArrayLike, *, warmup_steps: ArrayLike) -> Array:
  """Linear KL warm-up ``beta(t) = min(1, t / T)``: the KL weight grows from 0 to 1 in T steps.

  Sonderby et al. 2016 (Ladder VAE) warm-up; Bowman et al. 2016 call it KL annealing. Both
  arguments may be traced; no Python branch depends on their values.

  Args:
    step: the training step ``t >= 0``, an integer or float scalar (or any array: elementwise).
    warmup_steps: ``T``; ``T <= 0`` disables warm-up (the weight is 1 from step 0).

  Returns:
    ``beta`` in ``[0, 1]``, a float array of the shape of ``step``.

  Example:
    >>> from pareto_vae_jax import objectives
    >>> float(objectives.kl_warmup(250, warmup_steps=1000))
    0.25
  """
  t = jnp.asarray(step, float)
  total = jnp.asarray(warmup_steps, t.dtype)
  on = total > 0
  # The inner where keeps T = 0 from dividing 0 by 0 (nan) in the branch that is discarded.
  ramp = jnp.clip(t / jnp.where(on, total, 1), 0, 1)
  return jnp.where(on, ramp, jnp.ones_like(t))


def free_bits(kl_per_dim: ArrayLike, *, bits: ArrayLike, groups: int | None = None) -> Array:
  """Free-bits KL objective ``max(bits, E_batch[KL_j])`` per latent dimension ``j``.

  Kingma et al. 2016, "Improved Variational Inference with Inverse Autoregressive Flow", the
  free-bits objective: a dimension whose batch-mean KL is below ``bits`` nats pays the constant
  ``bits`` instead, so its KL gets no gradient and the encoder is not pushed to collapse it onto
  the prior. The floor acts on the mean over the batch, not on each example, so unlike the
  other functions here this one reduces (over the batch axis). Sum the result over dimensions
  for the KL term of a batch-mean loss: ``-mean(log_lik) + beta * sum(free_bits(kl, bits=b))``.

  With ``groups = K`` the floor acts on groups of dimensions instead (the notes' eq. 14): the D
  latent dimensions are split into K disjoint contiguous groups (sizes as equal as possible,
  the first ``D mod K`` one larger, as ``numpy.array_split``), and each group pays
  ``max(bits, sum_{j in group} E_batch[KL_j])``. ``K = D`` is the per-dimension floor; ``K = 1``
  floors the whole KL.

  With ``bits=0`` it equals the batch mean for a non-negative KL (every closed form). A
  single-sample Monte Carlo KL estimate can be negative and would be clipped at 0: to turn
  free bits off for such estimates, take the batch mean instead of calling this.

  Args:
    kl_per_dim: ``KL(q(z_j|x_i) || p(z_j))`` per example and latent dimension, shape
      ``[batch, dim]`` (or ``[batch, *latent_shape]``).
    bits: the floor ``lambda`` in nats, a scalar or broadcastable against ``[dim]`` (against
      ``[groups]`` with ``groups``).
    groups: None (per dimension), or K in 1..D: the floor acts on K groups of the last axis.

  Returns:
    The per-dimension objective of shape ``[dim]`` (``kl_per_dim.shape[1:]``), or with
    ``groups`` the per-group objective, shape ``[K]``.
  """
  kl_per_dim = jnp.asarray(kl_per_dim)
  if kl_per_dim.ndim < 1:
    raise ValueError("free_bits: kl_per_dim must have a leading batch axis, shape [batch, dim]; "
                     "got a scalar.")
  batch_mean = jnp.mean(kl_per_dim, axis=0)
  if groups is not None:
    if batch_mean.ndim != 1:
      raise ValueError("free_bits: groups needs kl_per_dim of shape [batch, dim]; got "
                       f"{kl_per_dim.shape}.")
    dim = batch_mean.shape[-1]
    if not 1 <= groups <= dim:
      raise ValueError(f"free_bits: groups={groups} must be in 1..{dim} (the latent dimensions).")
    membership = np.zeros((dim, groups), np.float32)  # static: dimension j -> its group
    for g, dims in enumerate(np.array_split(np.arange(dim), groups)):
      membership[dims, g] = 1.0
    batch_mean = batch_mean @ jnp.asarray(membership, batch_mean.dtype)
  # where, not maximum: maximum splits the gradient 1/2-1/2 on a tie, where gives a dimension at
  # the floor exactly zero gradient, as for every dimension below it.
  return jnp.where(batch_mean > bits, batch_mean, jnp.asarray(bits, batch_mean.dtype))


def elbo(log_likelihood: ArrayLike, kl: ArrayLike, *, beta: ArrayLike = 1.0) -> Array:
  """Per-example evidence lower bound ``log p(x|z) - beta KL(q(z|x) || p(z))``.

  Kingma & Welling 2014, eq. 7 (with ``beta = 1``); Higgins et al. 2017 weight the KL by
  ``beta``. Negate and average over the batch for a loss.

  Args:
    log_likelihood: ``log p(x|z)`` per example, shape ``[batch]``.
    kl: the KL per example, already summed over latent dimensions, shape ``[batch]``.
    beta: KL weight, e.g. ``kl_warmup(step, warmup_steps=T)``.

  Returns:
    The ELBO of shape ``[batch]``.
  """
  log_likelihood = jnp.asarray(log_likelihood)
  kl = jnp.asarray(kl)
  if log_likelihood.shape != kl.shape:
    raise ValueError(
        f"elbo: log_likelihood has shape {log_likelihood.shape} but kl has shape {kl.shape}. "
        "Both must be per example; sum the KL over its latent axes (and the likelihood over its "
        "event axes) first.")
  return log_likelihood - beta * kl


def iwae_bound(log_likelihood: ArrayLike, log_prior: ArrayLike, log_posterior: ArrayLike) -> Array:
  """Importance-weighted bound ``L_k = log (1/k) sum_i p(x, z_i) / q(z_i|x)``, ``z_i ~ q``.

  Burda, Grosse & Salakhutdinov 2016: ``L_1`` is the ELBO, ``L_k <= L_{k+1} <= log p(x)``
  (their theorem 1), and ``L_k -> log p(x)`` as ``k`` grows. Inputs are the terms of the log
  weights ``log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x)`` on the sample axis 0.

  Args:
    log_likelihood: ``log p(x|z_i)``, shape ``[k, batch]``.
    log_prior: ``log p(z_i)`` summed over latent dimensions, shape ``[k, batch]``.
    log_posterior: ``log q(z_i|x)`` summed over latent dimensions, shape ``[k, batch]``.

  Returns:
    One draw of the bound per example, shape ``[batch]``; its expectation is ``L_k``.

  Example:
    >>> import jax.numpy as jnp
    >>> from pareto_vae_jax import objectives
    >>> # log w = -1000 and -1000 + log 3: the mean weight is 2 e^-1000, which underflows.
    >>> ll = jnp.array([[-1000.0], [-1000.0 + jnp.log(3.0)]])
    >>> round(float(objectives.iwae_bound(ll, jnp.zeros((2, 1)), jnp.zeros((2, 1)))[0]), 4)
    -999.3069
  """
  shapes = {jnp.shape(a) for a in (log_likelihood, log_prior, log_posterior)}
  if len(shapes) != 1 or not next(iter(shapes)):
    raise ValueError(
        "iwae_bound: log_likelihood, log_prior and log_posterior must share one shape "
        f"[k, batch] with the importance samples on axis 0; got shapes "
        f"{jnp.shape(log_likelihood)}, {jnp.shape(log_prior)}, {jnp.shape(log_posterior)}. Sum "
        "log p(z) and log q(z|x) over the latent axes first.")
  log_w = jnp.asarray(log_likelihood) + jnp.asarray(log_prior) - jnp.asarray(log_posterior)
  k = log_w.shape[0]
  # logsumexp subtracts the largest log w before exponentiating, so log weights of -1e4 or
  # -1e30 (where every exp(log w) underflows to 0) still give the bound to full precision.
  return jax.nn.logsumexp(log_w, axis=0) - jnp.log(jnp.asarray(k, log_w.dtype))
