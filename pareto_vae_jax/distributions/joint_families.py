"""Registers the joint latent families with the trainer (``--latent=<name>``).

- ``full_cov_gaussian``: N(mu, L L^T), L = L* + diag(sigma); closed-form KL to N(0, I).
- ``planar``: a diagonal Gaussian, then ``flow_layers`` planar layers (amortized u, w, b);
  Monte Carlo KL.
- ``iaf``: a diagonal Gaussian, then ``iaf_steps`` MADE steps with the encoder's context h;
  Monte Carlo KL.

A learned prior is a full-covariance Gaussian for ``full_cov_gaussian`` (closed-form KL between
two full-covariance Gaussians) and a factorized Gaussian for the flows (Monte Carlo KL).
"""

from __future__ import annotations

from pareto_vae_jax.distributions import flows, full_cov_gaussian as fcg
from pareto_vae_jax.distributions.gaussian import Gaussian
from pareto_vae_jax.distributions.joint import (JointFamilyInfo, register_joint_family,
                                                register_joint_kl)

register_joint_family(JointFamilyInfo(
    name="full_cov_gaussian",
    cls=fcg.FullCovGaussian,
    num_raw=lambda d, options: fcg.num_raw(d),
    from_flat=lambda raw, d, options, shared: fcg.from_flat(raw, d),
    transform=fcg.transform,
    log_prob=fcg.log_prob,
    mean=fcg.mean,
    description="N(mu, L L^T), L = L* + diag(sigma): mean, strictly-lower L* and positive "
                "diagonal from the encoder",
))

register_joint_family(JointFamilyInfo(
    name="planar",
    cls=flows.PlanarFlow,
    num_raw=lambda d, options: flows.planar_num_raw(d, options["flow_layers"]),
    from_flat=lambda raw, d, options, shared: flows.planar_from_flat(raw, d,
                                                                     options["flow_layers"]),
    transform=flows.transform,
    description="diagonal Gaussian pushed through flow_layers planar layers (u, w, b per "
                "example; w.u_hat >= -1 keeps each invertible)",
))

register_joint_family(JointFamilyInfo(
    name="iaf",
    cls=flows.IAF,
    num_raw=lambda d, options: flows.iaf_num_raw(d, options["iaf_context"]),
    from_flat=lambda raw, d, options, shared: flows.iaf_from_flat(raw, d, options["iaf_context"],
                                                                  shared),
    transform=flows.transform,
    init_shared=lambda key, d, options: flows.made_init(key, d, options["iaf_context"],
                                                        options["iaf_hidden"],
                                                        options["iaf_steps"]),
    description="diagonal Gaussian, then iaf_steps MADE steps z <- sigma z + (1 - sigma) m "
                "(the gated update) with the encoder's context h",
))

register_joint_kl(fcg.FullCovGaussian, Gaussian)(fcg.kl_full_cov_diag)
register_joint_kl(fcg.FullCovGaussian, fcg.FullCovGaussian)(fcg.kl_full_cov)
