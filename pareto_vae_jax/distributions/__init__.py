"""Latent families as pure functions of immutable parameter pytrees."""

from pareto_vae_jax.distributions.base import (
    Distribution,
    FamilyInfo,
    KLNotImplementedError,
    family_info,
    family_names,
    has_closed_form_kl,
    kl,
    log_prob,
    log_prob_log,
    mean,
    mean_log,
    register_family,
    register_kl,
    rsample,
    rsample_log,
    variance,
)
from pareto_vae_jax.distributions.gaussian import Gaussian, kl_normal
from pareto_vae_jax.distributions.heads import HEADS, apply_head, elu_plus_one, softplus_floor
from pareto_vae_jax.distributions.inverse_gaussian import InverseGaussian, kl_inverse_gaussian
from pareto_vae_jax.distributions.lognormal import LogNormal
from pareto_vae_jax.distributions.pareto import Pareto, kl_pareto
