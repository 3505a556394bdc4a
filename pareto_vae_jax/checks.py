"""The config checked against the data and the devices, before a run writes anything."""

from __future__ import annotations

import dataclasses
import math
import numbers

from pareto_vae_jax import config as config_lib
from pareto_vae_jax import data as data_lib
from pareto_vae_jax import gamma_power
from pareto_vae_jax import models
from pareto_vae_jax import vae


class ConfigError(ValueError):
  """A config value a run cannot use; the message names the field and the fix."""


class ConfigTypeError(ConfigError, TypeError):
  """A config value of the wrong type (a string where a number is expected, say)."""


@dataclasses.dataclass(frozen=True)
class Range:
  """The values a numeric field may take: ``low`` (exclusive if ``strict``) up to ``high``."""
  integer: bool
  low: float
  strict: bool = False
  high: float | None = None
  each: bool = False  # the field is a tuple of such values (``hidden``)

  def __str__(self) -> str:
    kind = "an integer" if self.integer else "a finite number"
    if self.high is not None:
      text = f"{kind} in [{self.low}, {self.high}]"
    else:
      text = f"{kind} {'>' if self.strict else '>='} {self.low}"
    return f"a tuple of {text.replace('an integer', 'integers', 1)}" if self.each else text

  def has_type(self, value) -> bool:
    kinds = numbers.Integral if self.integer else numbers.Real
    return isinstance(value, kinds) and not isinstance(value, bool)

  def holds(self, value) -> bool:
    return (math.isfinite(value) and (value > self.low if self.strict else value >= self.low) and
            (self.high is None or value <= self.high))


_COUNT, _SWITCH = Range(integer=True, low=1), Range(integer=True, low=0)  # 0: off or auto
_POSITIVE, _NON_NEGATIVE = Range(integer=False, low=0, strict=True), Range(integer=False, low=0)

# Every numeric field of the config (config.py) and the values it may take. check_fields
# reads it; tests/test_validation.py checks that no numeric field of the default is missing.
FIELD_RANGES: dict[str, Range] = {
    "noise_scale": _NON_NEGATIVE,
    "noise_channels": _SWITCH,
    "prior_components": _COUNT,
    "latent_dim": _COUNT,
    "hidden": Range(integer=True, low=1, each=True),
    "head_init_scale": _POSITIVE,
    "pareto_alpha0": _POSITIVE,
    "pareto_scale": _POSITIVE,
    "flow_layers": _COUNT,
    "iaf_steps": _COUNT,
    "iaf_hidden": _COUNT,
    "iaf_context": _COUNT,
    "latent_df": _POSITIVE,
    "decoder_df": _POSITIVE,
    "gaussian_scale": _POSITIVE,
    "beta": _NON_NEGATIVE,
    "warmup_epochs": _NON_NEGATIVE,
    "free_bits": _NON_NEGATIVE,
    "free_bits_groups": _SWITCH,
    "batch_size": _COUNT,
    "num_epochs": _COUNT,
    "learning_rate": _POSITIVE,
    "grad_clip": _POSITIVE,
    "weight_decay": _NON_NEGATIVE,
    "seed": Range(integer=True, low=0, high=2**32 - 1),  # what numpy's and JAX's keys take
    "steps_per_dispatch": _SWITCH,
    "chunks_per_epoch": _SWITCH,
    "checkpoint_every_steps": _SWITCH,
    "keep_checkpoints": _COUNT,
    "halt_after_steps": _SWITCH,
    "iwae_samples": _COUNT,
    "eval_batch_size": _COUNT,
    "summary_every_epochs": _SWITCH,
}

# train.learning_rate's schedules: constant, or Burda et al.'s stages of 3**i epochs.
LR_SCHEDULES = ("constant", "burda")


def check_fields(config) -> None:
  """Raises ``ConfigError`` (``ConfigTypeError``) naming every numeric field out of its range.

  Needs neither the data nor the devices, so ``main`` calls it before anything starts; a field
  the config lacks is skipped (the code reading it has a default).
  """
  defaults = config_lib.get_config()
  problems, wrong_type = [], False
  for name, allowed in FIELD_RANGES.items():
    if name not in config:
      continue
    value = config[name]
    values = value if allowed.each and isinstance(value, (tuple, list)) else [value]
    typed = all(allowed.has_type(v) for v in values) and (not allowed.each or
                                                          isinstance(value, (tuple, list)))
    if typed and all(allowed.holds(v) for v in values):
      continue
    wrong_type |= not typed
    problems.append(f"config.{name}={value!r}: must be {allowed}; set "
                    f"--config.{name}={_flag_value(defaults[name])} (the default) or another "
                    "such value.")
  if problems:
    raise (ConfigTypeError if wrong_type else ConfigError)("\n".join(problems))


def _flag_value(value) -> str:
  return repr(value).replace(" ", "")  # a tuple as "(512,256)", one shell word


def check_config(config, ds: data_lib.Dataset, num_devices: int) -> vae.VAESpec:
  """The model's spec, once every value of ``config`` is known to be usable with ``ds``.

  Raises:
    ConfigError: a value out of its range (``check_fields``), unknown, or unusable with ``ds``
      or ``num_devices``; ``ConfigTypeError`` for a value of the wrong type.
  """
  check_fields(config)
  try:
    spec = vae.VAESpec.from_config(config, ds)  # unknown latents, likelihoods, noises, dtypes
    models.kernel_init(spec.weight_init)
  except ValueError as e:
    raise ConfigError(str(e)) from e
  # (--prior=vamp with a joint family is refused by models.VAE itself, before any training.)
  if vae.kl_method(*vae.latent_classes(spec)) in ("closed_joint", "estimate_joint"):
    if config.free_bits and config.get("free_bits_groups", 0) != 1:
      raise ConfigError(f"free_bits needs a KL per dimension or group; '{config.latent}' has one "
                        "KL for the whole latent vector. Set --config.free_bits_groups=1 (one "
                        "floor on the whole KL) or --config.free_bits=0.")
  groups = config.get("free_bits_groups", 0)
  if groups > spec.latent_dim:
    raise ConfigError(f"free_bits_groups={groups} must be at most latent_dim={spec.latent_dim} "
                      "(each group holds at least one dimension); set --config.free_bits_groups "
                      f"to 1..{spec.latent_dim}, or 0 for one group per dimension.")
  schedule = config.get("lr_schedule", "constant")
  if schedule not in LR_SCHEDULES:
    raise ConfigError(f"config.lr_schedule={schedule!r} is not one of {', '.join(LR_SCHEDULES)}; "
                      "set --config.lr_schedule=constant (the default) or burda.")
  _check_sequence_model(config, ds, spec)
  _check_objective(spec)
  if not 0 < config.batch_size <= len(ds.train_x):
    raise ConfigError(f"batch_size={config.batch_size} must be in [1, {len(ds.train_x)}] (the "
                      f"training examples of '{ds.name}'); set --config.batch_size accordingly.")
  prior = spec.prior
  if prior in ("vamp", "mixture") and config.free_bits:
    raise ConfigError(f"free_bits needs a factorized prior; the {prior} prior's density is joint "
                      "over the dimensions. Set --config.free_bits=0 or --prior=standard.")
  if prior == "vamp" and config.get("noise_channels", 0):
    raise ConfigError("The VampPrior's pseudo-inputs have the data's shape; with noise_channels "
                      "the encoder expects more channels. Use --prior=mixture or no channels.")
  if spec.noise_channels and spec.noise == "none":
    raise ConfigError("noise_channels needs a noise type; set --config.noise=normal (or another "
                      f"of {', '.join(vae.NOISES[1:])}).")
  if config.batch_size % num_devices:
    raise ConfigError(f"batch_size={config.batch_size} must be a multiple of the "
                      f"{num_devices} devices; set --config.batch_size accordingly.")
  if config.likelihood == "bernoulli":
    lo = min(ds.train_x.min(), ds.test_x.min())
    hi = max(ds.train_x.max(), ds.test_x.max())
    if lo < 0 or hi > 1:  # outside [0, 1] the Bernoulli log-likelihood is unbounded above
      raise ConfigError(f"likelihood 'bernoulli' needs inputs in [0, 1]; '{ds.name}' has inputs in "
                        f"[{lo:.3g}, {hi:.3g}]. Set --config.likelihood=gaussian (or mse).")
  if config.conditional:
    for split, labels in (("train", ds.train_y), ("test", ds.test_y)):
      if labels.min() < 0 or labels.max() >= ds.num_classes:
        raise ConfigError(
            f"--conditional needs labels in [0, {ds.num_classes}); the {split} split of "
            f"'{ds.name}' has labels in [{labels.min()}, {labels.max()}]. Fix the labels or run "
            "without --conditional.")
  return spec


def _check_sequence_model(config, ds: data_lib.Dataset, spec: vae.VAESpec) -> None:
  """Sequence data (``ds.sequence``) needs a recurrent architecture and the sequence
  likelihood, and those need sequence data."""
  recurrent = spec.architecture in models.SEQUENCE_ARCHITECTURES
  if ds.sequence is not None:
    if not recurrent or spec.likelihood != "sequence":
      raise ConfigError(
          f"'{ds.name}' holds sequences: set --config.architecture=lstm (or bilstm) and "
          "--config.likelihood=sequence, or start from --config=sequence_vae.")
    if spec.prior == "vamp":
      raise ConfigError("The VampPrior's pseudo-inputs would be continuous sequences; use "
                        "--prior=mixture or --prior=learned with sequence data.")
    if spec.sequence_feature == "sigmoid" and ds.sequence.feature_range != "unit":
      raise ConfigError(
          f"sequence_feature 'sigmoid' needs features in [0, 1]; '{ds.name}' has features outside "
          "it. Set --config.sequence_feature=relu (a Gaussian on a ReLU mean).")
  elif recurrent or spec.likelihood == "sequence":
    raise ConfigError(f"architecture '{spec.architecture}' and likelihood '{spec.likelihood}' are "
                      f"for sequence data; '{ds.name}' is not. Use --dataset=architectures or "
                      "--dataset=npz:PATH, or --config.architecture=mlp "
                      "--config.likelihood=bernoulli.")


def _check_objective(spec: vae.VAESpec) -> None:
  """The gamma-power objective holds for the power-form models only (``gamma_power``)."""
  if spec.objective != "gamma_power":
    return
  wrong = []
  families = gamma_power.FAMILIES
  if spec.latent not in families:
    wrong.append(f"--latent={' or '.join(families)} (got '{spec.latent}')")
  else:
    likelihoods = families[spec.latent]
    if spec.likelihood not in likelihoods:
      wrong.append(f"--config.likelihood={' or '.join(likelihoods)} with --latent={spec.latent} "
                   f"(got '{spec.likelihood}')")
    low = 2 if spec.latent == "multivariate_t" else 1
    if not spec.latent_df > low:
      wrong.append(f"--config.latent_df above {low} (got {spec.latent_df})")
  if spec.prior != "standard":
    wrong.append(f"--prior=standard (got '{spec.prior}')")
  if spec.decode_log or spec.sequential:
    wrong.append("an image or vector decoder of z itself")
  if wrong:
    raise ConfigError(
        "--objective=gamma_power is derived for the power-form models (t3VAE's "
        "multivariate t with its t decoder, scored as Gaussian; ParetoVAE's symPareto "
        "with its symPareto decoder, scored as Laplace, or its t decoder, scored as "
        "Gaussian); it needs " + ", ".join(wrong) + ".")
