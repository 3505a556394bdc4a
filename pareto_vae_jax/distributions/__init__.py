"""Latent families as pure functions of immutable parameter pytrees.

Each family's file registers it in the one registry (``registry.py``) when imported; importing
this package imports them all.
"""

from pareto_vae_jax.distributions.registry import (
    FamilyInfo,
    KLNotImplementedError,
    event_ndim,
    family_info,
    family_names,
    has_closed_form_kl,
    kl,
    register_family,
    register_kl,
)
from pareto_vae_jax.distributions.base import (
    Distribution,
    log_prob,
    log_prob_log,
    mean,
    mean_log,
    rsample,
    rsample_log,
    variance,
)
from pareto_vae_jax.distributions.gaussian import Gaussian, kl_normal
from pareto_vae_jax.distributions.heads import HEADS, apply_head, elu_plus_one, softplus_floor
from pareto_vae_jax.distributions.inverse_gaussian import InverseGaussian, kl_inverse_gaussian
from pareto_vae_jax.distributions.lognormal import LogNormal
from pareto_vae_jax.distributions.pareto import Pareto, kl_pareto
from pareto_vae_jax.distributions.student_t import StudentT
from pareto_vae_jax.distributions.lomax import Lomax
from pareto_vae_jax.distributions.weibull import Weibull, kl_weibull
from pareto_vae_jax.distributions.generalized_pareto import GeneralizedPareto
from pareto_vae_jax.distributions.symmetric_pareto import SymmetricPareto, kl_symmetric_pareto
from pareto_vae_jax.distributions.joint import (
    JointFamilyInfo,
    has_closed_form_joint_kl,
    is_joint,
    is_joint_family,
    joint_family_names,
    joint_info,
    joint_kl,
    latent_names,
    register_joint_family,
    register_joint_kl,
)
from pareto_vae_jax.distributions.full_cov_gaussian import (
    FullCovGaussian,
    kl_full_cov,
    kl_full_cov_diag,
    kl_full_cov_standard,
)
from pareto_vae_jax.distributions.multivariate_t import MultivariateT
from pareto_vae_jax.distributions.multivariate_symmetric_pareto import MultivariateSymmetricPareto
from pareto_vae_jax.distributions.planar import PlanarFlow
from pareto_vae_jax.distributions.iaf import IAF
from pareto_vae_jax.distributions.mixture import Mixture
from pareto_vae_jax.distributions.interop import from_tfp, to_tfp
