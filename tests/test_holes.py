"""Prior holes (pareto_vae_jax/holes.py): the hole fraction on known distributions, and the
aggregate posterior's density against a plain loop with scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from pareto_vae_jax import holes, vae

import tiny


def test_a_prior_equal_to_the_aggregate_posterior_has_the_quantile_in_holes():
  rng = np.random.default_rng(0)
  n = 40_000
  log_density = stats.norm.logpdf
  fraction, _ = holes.hole_fraction(log_density(rng.normal(size=n)),
                                    log_density(rng.normal(size=n)), 0.01)
  # Binomial standard error of the fraction ~5e-4, and as much again from the threshold.
  assert abs(fraction - 0.01) < 0.003


def test_a_wider_prior_falls_in_the_holes_as_often_as_its_tails_say():
  rng = np.random.default_rng(1)
  n = 40_000
  log_density = stats.norm.logpdf  # the aggregate posterior N(0, 1)
  fraction, threshold = holes.hole_fraction(log_density(3 * rng.normal(size=n)),
                                            log_density(rng.normal(size=n)), 0.01)
  # Below the 1 % density quantile of N(0, 1) is |z| > 2.5758; a N(0, 9) draw lands there with
  # probability 2 (1 - Phi(2.5758 / 3)) = 0.3905.
  assert threshold == pytest.approx(stats.norm.logpdf(2.5758), abs=0.05)
  assert fraction == pytest.approx(2 * stats.norm.sf(2.5758 / 3), abs=0.01)


def test_aggregate_posterior_density_equals_a_plain_mixture_of_the_encoders_gaussians():
  config = tiny.config(latent="gaussian")
  ds = tiny.small_dataset("synthetic_lognormal", 64, 16)
  spec = vae.VAESpec.from_config(config, ds)
  params = spec.init(jax.random.key(0))
  x_ref = ds.train_x[:40]
  q = vae.encode(spec, params, jnp.asarray(x_ref))
  loc, scale = np.asarray(q.loc, np.float64), np.asarray(q.scale, np.float64)
  z = np.random.default_rng(2).normal(size=(5, spec.latent_dim)).astype(np.float32)
  got = np.asarray(holes._aggregate_fn(spec)(params, jnp.asarray(x_ref), None, jnp.asarray(z)))
  for i in range(5):
    per_example = stats.norm.logpdf(z[i], loc, scale).sum(-1)  # [40]
    expected = np.logaddexp.reduce(per_example) - np.log(40)
    assert got[i] == pytest.approx(expected, rel=1e-4, abs=1e-4)


def test_prior_draws_outside_every_posteriors_support_are_holes():
  # Pareto posteriors with scales x_q >= 2 and a prior whose draws start at x_m = 1: the prior
  # draws below 2 have log q_agg = -inf, and so do a few held-out posterior draws' neighbours.
  log_q_posterior = np.concatenate([np.full(5, -np.inf), np.linspace(-3, 0, 995)])
  log_q_prior = np.array([-np.inf, -np.inf, -1.0, -0.5])
  fraction, threshold = holes.hole_fraction(log_q_prior, log_q_posterior, 0.01)
  assert np.isfinite(threshold) and -3 <= threshold < -2.9
  assert fraction == 0.5
