"""pareto-vae-jax: variational autoencoders with non-Gaussian latents in JAX/Flax.

The mathematical core is importable on its own::

    from pareto_vae_jax import Pareto, kl_pareto, rsample, rsample_log, kl, log_prob

and a trained model loads with ``pareto_vae_jax.load(workdir)`` (``trained.TrainedVAE``).
"""

from pareto_vae_jax import _xla_workaround  # (before JAX builds its CPU backend, if it can)
from pareto_vae_jax._xla_workaround import cpu_compiler_options
from pareto_vae_jax.distributions import (
    HEADS,
    Distribution,
    FamilyInfo,
    FullCovGaussian,
    IAF,
    Gaussian,
    GeneralizedPareto,
    InverseGaussian,
    JointFamilyInfo,
    KLNotImplementedError,
    LogNormal,
    Lomax,
    Pareto,
    PlanarFlow,
    StudentT,
    SymmetricPareto,
    Weibull,
    apply_head,
    elu_plus_one,
    family_info,
    family_names,
    from_tfp,
    has_closed_form_joint_kl,
    has_closed_form_kl,
    is_joint,
    is_joint_family,
    joint_family_names,
    joint_info,
    joint_kl,
    kl,
    kl_full_cov,
    kl_full_cov_diag,
    kl_full_cov_standard,
    kl_inverse_gaussian,
    kl_normal,
    kl_pareto,
    kl_symmetric_pareto,
    kl_weibull,
    latent_names,
    log_prob,
    log_prob_log,
    mean,
    mean_log,
    register_family,
    register_joint_family,
    register_joint_kl,
    register_kl,
    rsample,
    rsample_log,
    softplus_floor,
    to_tfp,
    variance,
)

__version__ = "0.1.0"


def __getattr__(name: str):
  # ``load`` and ``TrainedVAE`` pull in the trainer and Orbax: imported on first use, so that
  # the pure functions above stay quick to import.
  if name in ("load", "TrainedVAE"):
    from pareto_vae_jax import trained
    return getattr(trained, name)
  raise AttributeError(f"module 'pareto_vae_jax' has no attribute {name!r}")
