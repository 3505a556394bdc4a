"""What a VAE computes on a batch, from a static, hashable description of the model.

``VAESpec.from_config(config, ds)`` reads the config once, outside any trace; everything
after takes the spec, which is hashable and so a valid ``jax.jit`` static argument and
``functools.cache`` key. The pieces every other module uses:

* ``encode``, ``prior``, ``decode``: the model's three parts on parameters;
* ``draw`` (``sample_latent``) and ``sample_and_log_q``: reparameterized draws per example,
  positive families in log space, with ``decoder_input`` mapping a draw to what the decoder
  sees;
* ``terms``: the per-example terms of the training objective (log-likelihood and KL);
* ``eval_terms``: the test ELBO, its parts and the IWAE bound;
* ``kl_method``: which KL the objective uses (closed form or single-draw estimate), the one
  dispatch both ``terms`` and the run's printed sentence (``describe_kl``) read.

Draws, densities and KL terms are ``distributions.latent``'s, one code path for factorized
families, joint ones and mixture priors alike; the names here are kept for their callers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax import data as data_lib
from pareto_vae_jax import distributions as D
from pareto_vae_jax import gamma_power
from pareto_vae_jax import models
from pareto_vae_jax import objectives
from pareto_vae_jax import progress as progress_lib
from pareto_vae_jax import recurrent
from pareto_vae_jax._xla_workaround import jit
from pareto_vae_jax.distributions import latent
from pareto_vae_jax.distributions import multivariate_symmetric_pareto
from pareto_vae_jax.distributions import multivariate_t

Array = jax.Array
Batch = dict[str, Array]

# Pixel noise of the denoising experiments (the heavy-tail study, section 3.6), before
# ``noise_scale``: Normal(0, 1), LogNormal(0, 0.5), Uniform(0, 1), InverseGaussian(1, 1).
NOISES = ("none", "normal", "lognormal", "uniform", "inverse_gaussian")

# The config fields that define the model (``VAESpec.from_config``), what it is trained to fit
# and its draws (the seed): a checkpoint saved under other values is not resumed (``train.fit``
# refuses by name, ``checkpoint``), and they head TensorBoard's HParams. The training procedure
# (epochs, learning rate, beta, warm-up, batch size) may change between resumes.
MODEL_KEYS = ("dataset", "latent", "conditional", "prior", "latent_dim", "architecture", "hidden",
              "activation", "upsampling", "decoder_input", "pareto_alpha0", "pareto_scale",
              "latent_df", "objective", "likelihood", "gaussian_scale", "decoder_df", "binarize",
              "noise", "noise_scale", "noise_channels", "pareto_posterior_scale",
              "prior_components", "flow_layers", "iaf_steps", "iaf_hidden", "iaf_context",
              "sequence_feature", "seed")


def _pairs(mapping) -> tuple[tuple[str, Any], ...]:
  return tuple(sorted(dict(mapping or {}).items()))


@dataclasses.dataclass(frozen=True)
class VAESpec:
  """The model and what a batch goes through, as plain hashable values.

  Attributes:
    latent: a registered latent family (``distributions.latent_names()``).
    latent_dim: latent dimensions.
    num_classes: labels the model is conditioned on; 0 for a plain VAE.
    input_shape: the shape of one example.
    architecture, hidden, upsampling: the networks (``models.VAE``).
    prior, prior_components: ``standard``, ``learned``, ``vamp`` or ``mixture``; K.
    fixed, posterior_lower_bounds, standard_prior_kwargs, joint_options: ``models.VAE``'s,
      as sorted ``(name, value)`` pairs.
    head_init_scale, weight_init, dtype: initialization and compute dtype of the networks.
    activation: the MLP's hidden activation (``models.ACTIVATIONS``).
    objective: ``elbo``, or ``gamma_power`` (t3VAE's with ``multivariate_t``, ParetoVAE's as
      derived here with ``multivariate_symmetric_pareto``; ``gamma_power``: the power-form
      encoder with ``latent_df + n`` degrees of freedom and a closed-form regularizer in the
      KL's place).
    latent_df: the degrees of freedom nu of the multivariate t and symmetric Pareto latents
      (posterior and their own standard prior) and of t3VAE.
    decoder_df: the degrees of freedom of the ``student_t`` and ``symmetric_pareto``
      likelihoods (multivariate over the input, scale ``gaussian_scale``).
    decode_log: the decoder sees ``log z`` rather than ``z`` (positive families only).
    likelihood, gaussian_scale: the reconstruction term.
    binarize: score a Bernoulli(x) draw of each input instead of ``x``.
    noise, noise_scale, noise_channels: the denoising corruption of the encoder's input.
    sequence_feature: the sequence decoder's feature activation (``recurrent``): ``sigmoid``
      (a Bernoulli term, features in [0, 1]) or ``relu`` (a Gaussian term).
  """

  latent: str
  latent_dim: int
  num_classes: int
  input_shape: tuple[int, ...]
  architecture: str = "mlp"
  hidden: tuple[int, ...] = (512, 256)
  upsampling: str = "subpixel"
  prior: str = "standard"
  prior_components: int = 10
  fixed: tuple[tuple[str, float], ...] = ()
  posterior_lower_bounds: tuple[tuple[str, float], ...] = ()
  standard_prior_kwargs: tuple[tuple[str, float], ...] = ()
  joint_options: tuple[tuple[str, float], ...] = ()
  head_init_scale: float = 1.0
  weight_init: str = "fan_in_uniform"
  dtype: str = "float32"
  decode_log: bool = False
  likelihood: str = "bernoulli"
  gaussian_scale: float = 1.0
  binarize: bool = False
  noise: str = "none"
  noise_scale: float = 0.2
  noise_channels: int = 0
  sequence_feature: str = "sigmoid"
  activation: str = "relu"
  objective: str = "elbo"
  latent_df: float = 5.0
  decoder_df: float = 5.0

  @classmethod
  def from_config(cls,
                  config,
                  ds: data_lib.Dataset | None = None,
                  *,
                  input_shape: tuple[int, ...] | None = None,
                  num_classes: int | None = None) -> VAESpec:
    """The spec of ``config``'s model for the data ``ds`` (or its ``input_shape`` and classes)."""
    if ds is not None:
      input_shape, num_classes = tuple(ds.input_shape), ds.num_classes
    fixed, prior_kwargs = _latent_hyper(config)
    return cls(latent=config.latent,
               latent_dim=int(config.latent_dim),
               num_classes=int(num_classes) if config.conditional else 0,
               input_shape=tuple(input_shape),
               architecture=config.architecture,
               hidden=tuple(config.hidden),
               upsampling=config.upsampling,
               prior=resolve_prior(config),
               prior_components=int(config.get("prior_components", 10)),
               fixed=_pairs(fixed),
               posterior_lower_bounds=_pairs(_posterior_lower_bounds(config)),
               standard_prior_kwargs=_pairs(prior_kwargs),
               joint_options=_pairs(_joint_options(config)),
               head_init_scale=float(config.get("head_init_scale", 1.0)),
               weight_init=config.get("weight_init", "fan_in_uniform"),
               dtype=_dtype_name(config.get("dtype", "float32")),
               decode_log=_decode_log(config.latent, config.decoder_input),
               likelihood=_likelihood(config.likelihood),
               gaussian_scale=float(config.get("gaussian_scale", 1.0)),
               binarize=bool(config.get("binarize", False)),
               noise=_noise(config.get("noise", "none")),
               noise_scale=float(config.get("noise_scale", 0.2)),
               noise_channels=int(config.get("noise_channels", 0)),
               sequence_feature=_sequence_feature(config.get("sequence_feature", "sigmoid")),
               activation=_activation(config.get("activation", "relu"), config.architecture),
               objective=_objective(config.get("objective", "elbo")),
               latent_df=float(config.get("latent_df", 5.0)),
               decoder_df=float(config.get("decoder_df", 5.0)))

  @functools.cached_property
  def model(self) -> models.VAE:
    """The Flax module."""
    return models.VAE(family=self.latent,
                      latent_dim=self.latent_dim,
                      num_classes=self.num_classes,
                      input_shape=self.input_shape,
                      architecture=self.architecture,
                      hidden=self.hidden,
                      upsampling=self.upsampling,
                      prior=self.prior,
                      fixed=dict(self.fixed),
                      posterior_lower_bounds=dict(self.posterior_lower_bounds),
                      prior_components=self.prior_components,
                      standard_prior_kwargs=dict(self.standard_prior_kwargs),
                      head_init_scale=self.head_init_scale,
                      joint_options=dict(self.joint_options),
                      dtype=jnp.dtype(self.dtype),
                      weight_init=self.weight_init,
                      sequence_feature=self.sequence_feature,
                      activation=self.activation)

  @property
  def sequential(self) -> bool:
    """Whether the model is over sequences (an autoregressive, teacher-forced decoder)."""
    return self.architecture in models.SEQUENCE_ARCHITECTURES

  @property
  def conditional(self) -> bool:
    return self.num_classes > 0

  @property
  def encoder_input_shape(self) -> tuple[int, ...]:
    """One example as the encoder sees it: with ``noise_channels`` more channels."""
    if self.noise != "none" and self.noise_channels:
      return self.input_shape[:-1] + (self.input_shape[-1] + self.noise_channels,)
    return self.input_shape

  @property
  def loss_scale(self) -> float:
    """The loss is this times minus the ELBO (``Likelihood.loss_scale``)."""
    return LIKELIHOODS[self.likelihood].loss_scale

  def init(self, key: Array) -> Any:
    """Fresh parameters (jitted: run eagerly, each initializer op would compile on its own)."""
    x = jnp.zeros((1, *self.encoder_input_shape), jnp.float32)
    return jit(self.model.init)(key, x, jnp.zeros((1,), jnp.int32))


PRIORS = ("auto", "standard", "learned", "vamp", "mixture")
OBJECTIVES = ("elbo", "gamma_power")
# The joint options that carry ``config.latent_df`` to the multivariate families' heads.
DF_OPTIONS = (multivariate_t.DF_OPTION, multivariate_symmetric_pareto.DF_OPTION)


def resolve_prior(config) -> str:
  """``config.prior`` with ``auto`` resolved: ``learned`` for a Pareto CVAE (the guide's model,
  sections 2.2, 5.2 and 6.2: p(z | c) = Pareto(alpha_p(c), x_m), alpha_p a network of the
  label), ``standard`` for everything else."""
  prior = config.get("prior", "standard")
  if prior not in PRIORS:
    raise ValueError(f"Unknown prior '{prior}'; valid: {', '.join(PRIORS)}.")
  if prior == "auto":
    return "learned" if config.latent == "pareto" and config.conditional else "standard"
  return prior


def _latent_hyper(config) -> tuple[dict[str, float], dict[str, float]]:
  """(parameters the networks do not predict, keyword arguments of the standard prior).

  The Pareto prior's scale x_m is fixed; the standard prior is Pareto(alpha0, x_m). With
  ``pareto_posterior_scale = shared`` (the guide, section 3.2.1) the posterior shares that
  x_m; ``learned`` lets the encoder predict x_q >= x_m (see ``_posterior_lower_bounds``).
  """
  if config.latent == "pareto":
    return ({
        "scale": config.pareto_scale
    }, {
        "alpha": config.pareto_alpha0,
        "scale": config.pareto_scale
    })
  fixed = dict(D.family_info(config.latent).latent_fixed)
  return fixed, dict(fixed)


def _posterior_lower_bounds(config) -> dict[str, float]:
  """Pareto with a learned posterior scale: x_q = x_m exp(softplus(.)) >= x_m, so the KL to
  the Pareto(alpha0, x_m) prior stays finite (the general-scale closed form of ``kl_pareto``).

  With a shared scale, log(z / x_m) ~ Exponential(alpha) has mean = standard deviation = 1/alpha
  whatever alpha is: a dimension can move its code only by widening it. A learned x_q shifts
  log z without widening it.
  """
  mode = config.get("pareto_posterior_scale", "shared")
  if mode not in ("shared", "learned"):
    raise ValueError(f"Unknown pareto_posterior_scale '{mode}'; valid: shared, learned.")
  if config.latent == "pareto" and mode == "learned":
    return {"scale": config.pareto_scale}
  return {}


def _dtype_name(name: str) -> str:
  if name not in ("float32", "bfloat16"):
    raise ValueError(f"Unknown dtype '{name}'; valid: float32, bfloat16 (compute in bfloat16 "
                     "with float32 parameters, for GPUs and TPUs).")
  return name


def _decode_log(latent: str, decoder_input: str) -> bool:
  """Whether the decoder sees log z rather than z (positive families only)."""
  if decoder_input not in ("auto", "z", "log"):
    raise ValueError(f"Unknown decoder_input '{decoder_input}'; valid: auto, z, log.")
  if latent not in D.latent_names():
    raise ValueError(f"Unknown latent '{latent}'; valid: {', '.join(D.latent_names())}.")
  info = D.family_info(latent)
  positive = info.rsample_log is not None  # never for a joint family: its draws are real
  if decoder_input == "auto":
    # The power-law families: see docs/benchmarks.md, "Decoder input for Pareto".
    return positive and info.decode_log
  return positive and decoder_input == "log"


def _likelihood(name: str) -> str:
  if name not in LIKELIHOODS:
    raise ValueError(f"Unknown likelihood '{name}'; valid: {', '.join(LIKELIHOODS)}.")
  return name


def _joint_options(config) -> dict[str, float]:
  """The joint families' settings: the flows' sizes and the multivariate families' df."""
  sizes = (("flow_layers", 8), ("iaf_steps", 2), ("iaf_hidden", 128), ("iaf_context", 16))
  options = {name: int(config.get(name, default)) for name, default in sizes}
  return options | dict.fromkeys(DF_OPTIONS, float(config.get("latent_df", 5.0)))


def _activation(name: str, architecture: str) -> str:
  if name not in models.ACTIVATIONS:
    raise ValueError(f"Unknown activation '{name}'; valid: {', '.join(models.ACTIVATIONS)}.")
  if name != "relu" and architecture != "mlp":
    raise ValueError(f"activation '{name}' applies to the mlp architecture only; "
                     f"'{architecture}' uses relu. Drop --config.activation.")
  return name


def _objective(name: str) -> str:
  if name not in OBJECTIVES:
    raise ValueError(f"Unknown objective '{name}'; valid: {', '.join(OBJECTIVES)}.")
  return name


def _sequence_feature(name: str) -> str:
  if name not in recurrent.FEATURE_ACTIVATIONS:
    raise ValueError(f"Unknown sequence_feature '{name}'; valid: "
                     f"{', '.join(recurrent.FEATURE_ACTIVATIONS)}.")
  return name


def _noise(name: str) -> str:
  if name not in NOISES:
    raise ValueError(f"Unknown noise '{name}'; valid: {', '.join(NOISES)}.")
  return name


# ------------------------------------------------------------------------------------------------
# The model's parts on parameters.


def encode(spec: VAESpec, params, x: Array, y: Array | None = None):
  """The posterior q(z | x[, y]), a distribution of the registry (batched over ``x``)."""
  return spec.model.apply(params, x, y, method=models.VAE.encode)


def prior(spec: VAESpec, params, y: Array | None, n: int):
  """The prior for ``n`` examples (with labels ``y`` for a conditional model)."""
  return spec.model.apply(params, y, n, method=models.VAE.prior_dist)


def decode(spec: VAESpec,
           params,
           z: Array,
           y: Array | None = None,
           target: Array | None = None) -> Array:
  """The decoder's outputs (logits for ``bernoulli``, means otherwise) for ``z`` as it sees it.

  A sequence decoder is teacher-forced on ``target`` (the sequences being scored) and runs
  free without it (``recurrent``); other decoders ignore ``target``.
  """
  return spec.model.apply(params, z, y, target, method=models.VAE.decode)


# ------------------------------------------------------------------------------------------------
# Draws and densities.


def example_keys(key: Array, index: Array) -> Array:
  """One key per example: ``fold_in(key, index)``, so a draw does not depend on the batch."""
  return jax.vmap(jax.random.fold_in, (None, 0))(key, index)


def sample_latent(keys: Array, q, num_samples: int | None = None) -> tuple[Array, bool]:
  """Draws per example (one key each). Returns ``(draw, in_log_space)``.

  Positive families are drawn in log space, where the draw and its density stay finite for
  every tail index (``rsample_log``, ``log_prob_log``); see ``latent.sample_and_log_prob``.
  """
  return latent.sample_and_log_prob(keys, q, num_samples)[:2]


draw = sample_latent


def latent_log_prob(dist, r: Array, in_log: bool) -> Array:
  """The family's own log-density at the draw ``r``: per dimension ([..., D]) for a factorized
  family, of the vector ([...]) for a joint one or a mixture (``latent.log_prob_event``)."""
  return latent.log_prob_event(dist, r, in_log)


def joint_log_prob(dist, r: Array, in_log: bool) -> Array:
  """log p(z) of the whole latent vector, ``[...]`` (``latent.log_prob_vector``)."""
  return latent.log_prob_vector(dist, r, in_log)


def sample_and_log_q(keys: Array, q, num_samples: int | None = None):
  """``(draw, in_log, log q(draw))``: the joint log-density of each example's draw.

  For a flow the density comes with the draw (its change of variables); for every other
  posterior it is evaluated at the draw (``latent.sample_and_log_prob``).
  """
  return latent.sample_and_log_prob(keys, q, num_samples)


def decoder_input(r: Array, in_log: bool, use_log: bool) -> Array:
  """What the decoder sees of a draw ``r``: ``log z`` (``use_log``) or ``z``."""
  return jnp.exp(r) if in_log and not use_log else r


# ------------------------------------------------------------------------------------------------
# Inputs and the reconstruction term.


def observed(spec: VAESpec, batch: Batch, key: Array) -> Array:
  """The inputs the model encodes and scores: ``x``, or with ``binarize`` a Bernoulli(x) draw."""
  if not spec.binarize:
    return batch["x"]
  keys = jax.vmap(lambda k: jax.random.fold_in(k, 1))(example_keys(key, batch["index"]))
  return jax.vmap(data_lib.binarize)(keys, batch["x"])


def _unit_noise(key: Array, kind: str, shape: tuple[int, ...]) -> Array:
  if kind == "normal":
    return jax.random.normal(key, shape)
  if kind == "lognormal":
    return jnp.exp(0.5 * jax.random.normal(key, shape))
  if kind == "uniform":
    return jax.random.uniform(key, shape)
  if kind == "inverse_gaussian":
    return D.rsample(key, D.InverseGaussian(jnp.ones(shape), jnp.ones(shape)))
  raise ValueError(f"Unknown noise '{kind}'; valid: {', '.join(NOISES)}.")


def encoder_input(spec: VAESpec, x: Array, key: Array, index: Array) -> Array:
  """What the encoder sees: ``x``, or for denoising ``x`` plus noise or with noise channels.

  ``noise_channels = 0`` adds ``noise_scale`` times a unit draw to every pixel; ``m > 0``
  stacks m channels of such noise after the image instead (the study's stacked channels).
  The decoder always reconstructs the clean ``x``. Fresh noise per example and step.
  """
  if spec.noise == "none":
    return x
  keys = jax.vmap(lambda k: jax.random.fold_in(k, 3))(example_keys(key, index))
  channels = spec.noise_channels or x.shape[-1]
  noise = jax.vmap(lambda k: _unit_noise(k, spec.noise, x.shape[1:-1] + (channels,)))(keys)
  noise = spec.noise_scale * noise
  return jnp.concatenate([x, noise], -1) if spec.noise_channels else x + noise


def reconstruction_log_likelihood(spec: VAESpec, out: Array, x: Array) -> Array:
  """Per-example log p(x | z) of the spec's likelihood (``LIKELIHOODS``)."""
  return LIKELIHOODS[spec.likelihood].log_prob(spec, out, x)


@dataclasses.dataclass(frozen=True)
class Likelihood:
  """A reconstruction term: a name of ``config.likelihood``.

  Attributes:
    log_prob: ``(spec, decoder_output, x) -> [B]``, log p(x | z) per example (or minus an
      error, for the squared-error losses).
    mean: ``(spec, decoder_output)`` -> the mean of p(x | z) (the pictures,
      ``TrainedVAE.decode``).
    loss_scale: the loss is ``loss_scale`` times minus the ELBO (the heavy-tail study's
      1/2 (error + beta KL), its eq. 3, for mse and sse).
  """

  log_prob: Callable[[VAESpec, Array, Array], Array]
  mean: Callable[[VAESpec, Array], Array] = lambda spec, out: out
  loss_scale: float = 1.0


LIKELIHOODS: dict[str, Likelihood] = {}


def register_likelihood(name: str, likelihood: Likelihood) -> None:
  """Makes ``likelihood`` available as ``config.likelihood = name``."""
  if name in LIKELIHOODS:
    raise ValueError(f"Likelihood '{name}' is already registered.")
  LIKELIHOODS[name] = likelihood


register_likelihood(
    "bernoulli",
    Likelihood(
        lambda spec, out, x: objectives.bernoulli_log_likelihood(out, x, event_ndim=x.ndim - 1),
        mean=lambda spec, out: jax.nn.sigmoid(out)))
register_likelihood(
    "gaussian",
    Likelihood(lambda spec, out, x: objectives.gaussian_log_likelihood(
        out, x, scale=spec.gaussian_scale, event_ndim=x.ndim - 1)))
register_likelihood(
    # ParetoVAE's reconstruction (our derivation, ``gamma_power``): log Laplace(x | out, sigma).
    "laplace",
    Likelihood(lambda spec, out, x: -jnp.sum(
        jnp.abs(x - out).reshape(x.shape[0], -1) / spec.gaussian_scale + jnp.log(
            2 * spec.gaussian_scale), -1)))
register_likelihood(
    "mse",
    Likelihood(lambda spec, out, x: -objectives.mean_squared_error(out, x, event_ndim=x.ndim - 1),
               loss_scale=0.5))
register_likelihood(
    # MATLAB's ``mse`` for deep-learning arrays: half the squared error summed over the pixels,
    # per example (1 / 2N sum over all N x pixels terms); the heavy-tail study's "MSE", whose loss
    # is 1/2 (MSE + beta KL) (its eq. 3), so beta weighs the KL twice as much as with ``sse``.
    "matlab_mse",
    Likelihood(
        lambda spec, out, x: -0.5 * objectives.sum_squared_error(out, x, event_ndim=x.ndim - 1),
        loss_scale=0.5))
register_likelihood(
    "sequence",
    Likelihood(lambda spec, out, x: objectives.sequence_log_likelihood(
        out, x, feature=spec.sequence_feature, scale=spec.gaussian_scale),
               mean=lambda spec, out: objectives.sequence_mean(out, feature=spec.sequence_feature)))


def _multivariate_log_lik(module, spec: VAESpec, out: Array, x: Array) -> Array:
  """log p(x | z) of a multivariate heavy-tailed decoder: ``module``'s density over the whole
  flattened input with location ``out``, scale ``gaussian_scale`` and ``decoder_df``."""
  b = x.shape[0]
  loc = out.reshape(b, -1)
  dist = module.cls(loc, jnp.full_like(loc, spec.gaussian_scale), jnp.full((b,), spec.decoder_df))
  return module.log_prob(dist, x.reshape(b, -1))


# Heavy-tailed decoders (t3VAE's and ParetoVAE's): the multivariate t and symPareto over pixels.
register_likelihood(
    "student_t",
    Likelihood(lambda spec, out, x: _multivariate_log_lik(multivariate_t.INFO, spec, out, x)))
register_likelihood(
    "symmetric_pareto",
    Likelihood(lambda spec, out, x: _multivariate_log_lik(multivariate_symmetric_pareto.INFO, spec,
                                                          out, x)))
register_likelihood(
    "sse",
    Likelihood(lambda spec, out, x: -objectives.sum_squared_error(out, x, event_ndim=x.ndim - 1),
               loss_scale=0.5))

# ------------------------------------------------------------------------------------------------
# The KL term: one dispatch.


def kl_method(q, p) -> str:
  """How the objective gets KL(q || p) for these posterior and prior (types or instances):
  ``closed``, ``closed_joint``, ``mixture``, ``estimate_joint`` or ``estimate``
  (``latent.kl_method``)."""
  return latent.kl_method(q, p)


def kl_terms(q, p, r: Array, in_log: bool, log_q: Array | None = None) -> Array:
  """Per-dimension KL ``[B, D]`` at the draw ``r`` with ``log_q = log q(r)`` of each vector
  (needed only by the estimate for a joint posterior: ``sample_and_log_q`` gives it).

  A KL of the whole vector (joint posteriors, mixture priors) is shared equally by the
  dimensions, so that their sum is the KL (``latent.kl_or_estimate``).
  """
  return latent.kl_or_estimate(q, p, r, in_log, log_q)


def latent_classes(spec: VAESpec) -> tuple[type, type]:
  """The posterior's and the prior's classes, as ``models.VAE`` builds them."""
  info = D.family_info(spec.latent)
  q_cls = p_cls = info.cls
  if info.event_ndim == 1 and (spec.prior != "learned" or info.log_prob is None):
    # A joint family's standard prior is N(0, I); its learned prior is of its own family where
    # that density is tractable (full covariance), else a factorized Gaussian (flows).
    p_cls = D.Gaussian
  if spec.prior in ("vamp", "mixture"):
    p_cls = D.Mixture
  return q_cls, p_cls


def describe_kl(spec: VAESpec) -> str:
  """The sentence a run prints about its KL term, read from ``kl_method``."""
  q_cls, p_cls = latent_classes(spec)
  method = kl_method(q_cls, p_cls)
  if p_cls is D.Mixture:  # of the posterior's family; of diagonal Gaussians for a joint one
    parts = q_cls.__name__ if D.event_ndim(q_cls) == 0 else "Gaussian"
    p_name = f"mixture of {parts}"
  else:
    p_name = p_cls.__name__
  pair = f"KL({q_cls.__name__} || {p_name})"
  if method == "closed":
    return f"{pair}: closed form."
  if method == "closed_joint":
    return f"{pair}: closed form (one for the whole latent vector)."
  return (f"{pair} has no closed form; the ELBO uses the single-sample Monte Carlo estimate "
          "log q(z) - log p(z) at the same draw (unbiased).")


# ------------------------------------------------------------------------------------------------
# The objective's terms.


def _encoded(spec: VAESpec, params, x: Array, y: Array | None, key: Array, index: Array):
  """(the encoder's distribution, the posterior the objective draws from) for ``x``: the same
  object, except for ``gamma_power``, whose posterior is built from the encoder's loc and scale."""
  q = encode(spec, params, encoder_input(spec, x, key, index), y)
  if spec.objective == "gamma_power":
    return q, gamma_power.posterior(spec.latent, q.loc, q.scale, spec.latent_df,
                                    math.prod(spec.input_shape), spec.likelihood)
  return q, q


def posterior(spec: VAESpec, params, x: Array, y: Array | None, key: Array, index: Array):
  """q(z | x[, y]) as the objective draws from it: the encoder's distribution of ``x`` (with the
  spec's corruption), or for ``gamma_power`` t3VAE's encoder built from its loc and scale."""
  return _encoded(spec, params, x, y, key, index)[1]


def terms(spec: VAESpec, params, batch: Batch, key: Array) -> dict[str, Array]:
  """Encodes, draws once per example, decodes: ``log_lik`` [B] and ``kl_dim`` [B, D].

  For ``gamma_power`` the ``kl_dim`` are t3VAE's regularizer ``R`` shared equally by the
  dimensions (``gamma_power.regularizer``), which tends to the KL as ``latent_df`` grows.
  """
  x, y = observed(spec, batch, key), batch.get("y")
  keys = example_keys(key, batch["index"])
  encoded, q = _encoded(spec, params, x, y, key, batch["index"])
  p = prior(spec, params, y, x.shape[0])
  r, in_log, log_q = sample_and_log_q(keys, q)
  out = decode(spec, params, decoder_input(r, in_log, spec.decode_log), y, target=x)
  if spec.objective == "gamma_power":  # the regularizer takes the encoder's own loc and scale
    reg = gamma_power.loss_regularizer(spec.latent, encoded.loc, encoded.scale, spec.latent_df,
                                       math.prod(spec.input_shape), spec.gaussian_scale,
                                       spec.likelihood)
    kl_dim = jnp.broadcast_to(reg[:, None] / spec.latent_dim, r.shape)
  else:
    kl_dim = kl_terms(q, p, r, in_log, log_q)
  return {"log_lik": reconstruction_log_likelihood(spec, out, x), "kl_dim": kl_dim}


def eval_terms(spec: VAESpec, params, batch: Batch, key: Array,
               num_samples: int) -> dict[str, Array]:
  """Per example: the ELBO, its reconstruction and KL, and the IWAE bound with ``num_samples``."""
  t = terms(spec, params, batch, key)
  x, y = observed(spec, batch, key), batch.get("y")  # the draw the ELBO terms scored
  q = posterior(spec, params, x, y, key, batch["index"])  # same corruption
  p = prior(spec, params, y, x.shape[0])
  keys = example_keys(jax.random.fold_in(key, 2), batch["index"])
  r, in_log, log_q = sample_and_log_q(keys, q, num_samples)  # [k, B, dim], [k, B]
  log_p = joint_log_prob(p, r, in_log)
  out = jax.vmap(lambda z: decode(spec, params, z, y, target=x))(decoder_input(
      r, in_log, spec.decode_log))
  log_lik = jax.vmap(lambda o: reconstruction_log_likelihood(spec, o, x))(out)
  kl = jnp.sum(t["kl_dim"], -1)
  return {
      "elbo": t["log_lik"] - kl,
      "recon": -t["log_lik"],
      "kl": kl,
      "iwae": objectives.iwae_bound(log_lik, log_p, log_q)
  }


@functools.cache
def make_eval_fn(spec: VAESpec, num_samples: int):
  """``eval_terms`` jitted for ``(params, batch, key)``; one per spec and ``num_samples``."""
  return jit(functools.partial(eval_terms, spec, num_samples=num_samples))


def eval_key(seed: int) -> Array:
  """The key of a run's test evaluation (``train.train_and_evaluate``, ``TrainedVAE``)."""
  return jax.random.fold_in(jax.random.key(seed), 2**30)


def per_example(eval_fn: Callable,
                params,
                x,
                y,
                batch_size: int,
                key: Array,
                *,
                progress: bool = False) -> dict[str, np.ndarray]:
  """``eval_fn``'s per-example outputs over ``x`` (and labels ``y``, or None) in batches.

  Example ``i`` is scored with the key ``fold_in(key, i)`` whatever the batch size. With
  ``progress`` (and more than one batch), a line with the ETA at most every 10 s: IWAE with
  k = 1000 on 10k test digits takes minutes.
  """
  outputs: dict[str, list] = {}
  bar = progress_lib.Progress(len(x),
                              "  evaluate",
                              unit="ex",
                              enabled=progress and len(x) > batch_size)
  for start in range(0, len(x), batch_size):
    idx = np.arange(start, min(start + batch_size, len(x)))
    batch = {"x": jnp.asarray(x[idx]), "index": jnp.asarray(idx)}
    if y is not None:
      batch["y"] = jnp.asarray(y[idx])
    for k, v in eval_fn(params, batch, key).items():
      outputs.setdefault(k, []).append(np.asarray(v))
    bar.update(len(idx))
  bar.close()
  return {k: np.concatenate(v) for k, v in outputs.items()}


def evaluate(eval_fn: Callable,
             params,
             x: np.ndarray,
             y: np.ndarray,
             batch_size: int,
             key: Array,
             *,
             progress: bool = False) -> dict[str, float]:
  """Test metrics: means and standard errors over examples (``per_example``'s outputs)."""
  values = per_example(eval_fn, params, x, y, batch_size, key, progress=progress)
  result = {}
  for name in ("elbo", "recon", "kl", "iwae"):
    v = values[name].astype(np.float64)
    result[name] = float(v.mean())
    result[name + "_stderr"] = float(v.std() / math.sqrt(len(v)))
  result["num_examples"] = int(len(x))
  return result
