"""The trainer's Monte Carlo KL (used where no closed form is registered) against closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from pareto_vae_jax import train
from reference import training_kl_estimate

N = 200_000


@pytest.mark.parametrize("q, p", [
    (pvj.Gaussian(jnp.array([0.3, -1.0]), jnp.array([0.5, 2.0])), pvj.Gaussian(0.0, 1.0)),
    (pvj.LogNormal(jnp.array([0.3, -1.0]), jnp.array([0.5, 2.0])), pvj.LogNormal(0.0, 1.0)),
    # Drawn and scored in log space: the Jacobian of z -> log z cancels in log q - log p.
    (pvj.Pareto(jnp.array([0.7, 3.0]), 1.0), pvj.Pareto(1.0, 1.0)),
    (pvj.InverseGaussian(jnp.array([0.5, 2.0]), jnp.array([1.0, 4.0])),
     pvj.InverseGaussian(1.0, 1.0)),
], ids=["gaussian", "lognormal", "pareto", "inverse_gaussian"])
def test_single_sample_estimate_is_unbiased_for_the_closed_form(q, p):
  # One draw per "example", as in the train step, over N examples.
  mean, se = training_kl_estimate(q, p, N, jax.random.key(0))
  exact = np.asarray(pvj.kl(q, p))
  assert np.all(np.abs(mean - exact) < 4 * se + 1e-4), (mean, exact, se)


def test_the_run_says_which_kl_it_uses():
  from pareto_vae_jax import config as config_lib
  c = config_lib.get_config()
  assert train.log_kl_estimator(c) == "KL(Pareto || Pareto): closed form."
  mc = ("has no closed form; the ELBO uses the single-sample Monte Carlo estimate log q(z) - "
        "log p(z) at the same draw (unbiased).")
  for latent, prior, expected in [
      ("student_t", "standard", f"KL(StudentT || StudentT) {mc}"),
      ("pareto", "vamp", f"KL(Pareto || mixture of Pareto) {mc}"),
      ("full_cov_gaussian", "standard",
       "KL(FullCovGaussian || Gaussian): closed form (one for the whole latent vector)."),
      ("full_cov_gaussian", "learned",
       "KL(FullCovGaussian || FullCovGaussian): closed form (one for the whole latent vector)."),
      ("planar", "learned", f"KL(PlanarFlow || Gaussian) {mc}"),
      ("iaf", "mixture", f"KL(IAF || mixture of Gaussian) {mc}")]:
    c.latent, c.prior = latent, prior
    assert train.log_kl_estimator(c) == expected
