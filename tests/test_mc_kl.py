"""The trainer's Monte Carlo KL (used where no closed form is registered) against closed forms
and quadrature, for every registered family (tests/family_cases.py)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from pareto_vae_jax import vae
from family_cases import CASES
from reference import elements, kl_quadrature, training_kl_estimate


@pytest.mark.parametrize("name", pvj.family_names())
def test_single_sample_estimate_is_unbiased_for_the_kl(name):
  # One draw per "example", as in the train step (in log space for positive families: the
  # Jacobian of z -> log z cancels in log q - log p), against the closed form where one is
  # registered and quadrature elsewhere.
  q, p, n = CASES[name].trainer_kl
  mean, se = training_kl_estimate(q, p, n, jax.random.key(0))
  if pvj.has_closed_form_kl(type(q), type(p)):
    exact = np.asarray(pvj.kl(q, p))
  else:
    p = jax.tree.map(lambda v: jnp.broadcast_to(v, q.batch_shape), p)
    exact = np.array([kl_quadrature(qi, pi) for qi, pi in zip(elements(q), elements(p))])
  assert np.all(np.abs(mean - exact) < 4 * se + 1e-4), (mean, exact, se)


def test_the_run_says_which_kl_it_uses():
  from pareto_vae_jax import config as config_lib
  c = config_lib.get_config()
  describe = lambda c: vae.describe_kl(vae.VAESpec.from_config(c, input_shape=(4,),
                                                               num_classes=0))
  assert describe(c) == "KL(Pareto || Pareto): closed form."
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
    assert describe(c) == expected
