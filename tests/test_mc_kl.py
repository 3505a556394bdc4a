"""The trainer's Monte Carlo KL (used where no closed form is registered) against closed forms."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from pareto_vae_jax import train

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
  q_n = jax.tree.map(lambda v: jnp.broadcast_to(v, (N, *v.shape)), q)
  p_n = jax.tree.map(lambda v: jnp.broadcast_to(v, (N, *q.batch_shape)), p)
  keys = jax.random.split(jax.random.key(0), N)
  r, in_log = train.sample_latent(keys, q_n)
  estimate = np.asarray(train.latent_log_prob(q_n, r, in_log)
                        - train.latent_log_prob(p_n, r, in_log), np.float64)
  mean, se = estimate.mean(0), estimate.std(0) / np.sqrt(N)
  exact = np.asarray(pvj.kl(q, p))
  assert np.all(np.abs(mean - exact) < 4 * se + 1e-4), (mean, exact, se)


def test_the_run_says_which_kl_it_uses():
  from pareto_vae_jax import config as config_lib
  c = config_lib.get_config()
  assert train.log_kl_estimator(c) == "KL(Pareto || Pareto): closed form."
