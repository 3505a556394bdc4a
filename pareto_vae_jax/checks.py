"""The config checked against the data and the devices, before a run writes anything."""

from __future__ import annotations

from pareto_vae_jax import data as data_lib
from pareto_vae_jax import models
from pareto_vae_jax import vae


def check_config(config, ds: data_lib.Dataset, num_devices: int) -> vae.VAESpec:
  """The model's spec, once every value of ``config`` is known to be usable with ``ds``."""
  spec = vae.VAESpec.from_config(config, ds)  # unknown latents, likelihoods, noises, dtypes
  models.kernel_init(spec.weight_init)
  # (--prior=vamp with a joint family is refused by models.VAE itself, before any training.)
  if vae.kl_method(*vae.latent_classes(spec)) in ("closed_joint", "estimate_joint"):
    if config.free_bits:
      raise ValueError(f"free_bits needs a KL per dimension; '{config.latent}' has one KL for "
                       "the whole latent vector. Set --config.free_bits=0.")
  if not 0 < config.batch_size <= len(ds.train_x):
    raise ValueError(f"batch_size={config.batch_size} must be in [1, {len(ds.train_x)}] (the "
                     f"training examples of '{ds.name}'); set --config.batch_size accordingly.")
  prior = config.get("prior", "standard")
  if prior in ("vamp", "mixture") and config.free_bits:
    raise ValueError(f"free_bits needs a factorized prior; the {prior} prior's density is joint "
                     "over the dimensions. Set --config.free_bits=0 or --prior=standard.")
  if prior == "vamp" and config.get("noise_channels", 0):
    raise ValueError("The VampPrior's pseudo-inputs have the data's shape; with noise_channels "
                     "the encoder expects more channels. Use --prior=mixture or no channels.")
  if spec.noise_channels and spec.noise == "none":
    raise ValueError("noise_channels needs a noise type; set --config.noise=normal (or another "
                     f"of {', '.join(vae.NOISES[1:])}).")
  if config.batch_size % num_devices:
    raise ValueError(f"batch_size={config.batch_size} must be a multiple of the "
                     f"{num_devices} devices; set --config.batch_size accordingly.")
  if config.likelihood == "bernoulli":
    lo = min(ds.train_x.min(), ds.test_x.min())
    hi = max(ds.train_x.max(), ds.test_x.max())
    if lo < 0 or hi > 1:  # outside [0, 1] the Bernoulli log-likelihood is unbounded above
      raise ValueError(
          f"likelihood 'bernoulli' needs inputs in [0, 1]; '{ds.name}' has inputs in "
          f"[{lo:.3g}, {hi:.3g}]. Set --config.likelihood=gaussian (or mse).")
  if config.conditional:
    for split, labels in (("train", ds.train_y), ("test", ds.test_y)):
      if labels.min() < 0 or labels.max() >= ds.num_classes:
        raise ValueError(
            f"--conditional needs labels in [0, {ds.num_classes}); the {split} split of "
            f"'{ds.name}' has labels in [{labels.min()}, {labels.max()}]. Fix the labels or run "
            "without --conditional.")
  return spec
