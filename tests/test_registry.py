"""The family registries: every registered family has a reference and test cases, and the
facts the trainer reads from the registry (heads, standard priors, log-space functions, the
joint families' contract) hold for each, without per-family code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from family_cases import CASES
from pareto_vae_jax.distributions import heads, joint
from reference import JOINT_REFERENCES, NO_REFERENCE, REFERENCES

KEY = jax.random.key(0)


def test_every_registered_family_has_an_independent_reference_or_a_stated_reason():
  factorized, joint_names = set(pvj.family_names()), set(pvj.joint_family_names())
  missing = sorted((factorized - set(REFERENCES) - set(NO_REFERENCE))
                   | (joint_names - set(JOINT_REFERENCES) - set(NO_REFERENCE)))
  assert not missing, (f"{missing}: add a reference to tests/reference.py (REFERENCES or "
                       "JOINT_REFERENCES), or list the family in NO_REFERENCE with the reason "
                       "and what checks it instead.")
  assert all(reason.strip() for reason in NO_REFERENCE.values())
  stale = (set(REFERENCES) - factorized) | (set(JOINT_REFERENCES) - joint_names) | (
      set(NO_REFERENCE) - factorized - joint_names)
  assert not stale, f"{sorted(stale)} are not registered families"


def test_every_registered_family_has_test_cases():
  missing = sorted(set(pvj.family_names()) - set(CASES))
  assert not missing, f"{missing}: add its parameter values to tests/family_cases.py."
  assert not set(CASES) - set(pvj.family_names())


@pytest.mark.parametrize("name", pvj.family_names())
def test_family_is_registered_with_a_known_head_for_every_parameter(name):
  info = pvj.family_info(name)
  assert pvj.family_info(info.cls) is info and type(CASES[name].grad_point) is info.cls
  assert set(info.heads) == set(info.param_names)
  assert all(head in pvj.HEADS for head in info.heads.values())
  # Positive families have the log-space functions the trainer draws with; real ones have none.
  positive = CASES[name].positive
  assert (info.rsample_log is not None) == positive
  assert (info.log_prob_log is not None) == positive
  assert (info.mean_log is not None) == positive


@pytest.mark.parametrize("name", pvj.family_names())
def test_standard_prior_takes_the_trainers_arguments_and_has_the_documented_parameters(name):
  info = pvj.family_info(name)
  prior = info.standard_prior((2, 3), **info.latent_fixed)  # what the model's prior passes
  assert type(prior) is info.cls and prior.batch_shape == (2, 3)
  for value, expected in zip(prior.params, CASES[name].standard_prior, strict=True):
    np.testing.assert_array_equal(value, expected)


# A posterior whose parameters the trainer does not take from the heads alone.
HEADS_NOT_ENOUGH = {
    "pareto": "the trainer's posterior shares the prior's x_m (or keeps x_q >= x_m); a head's "
              "own x_q below the prior's puts draws outside the prior's support",
}


@pytest.mark.parametrize("name", [n for n in pvj.family_names() if n not in HEADS_NOT_ENOUGH])
def test_the_latent_heads_and_standard_prior_give_valid_finite_codes(name):
  # Raw encoder outputs over the range where draws are documented finite, drawn as the trainer
  # draws (in log space for positive families).
  info = pvj.family_info(name)
  raw = jnp.array((-1e4, -5.0, 0.0, 5.0, 1e2))
  values = [jnp.full(5, info.latent_fixed[n]) if n in info.latent_fixed
            else heads.apply_head(info.heads[n], raw) for n in info.param_names]
  q, p = info.cls(*values), info.standard_prior((5,), **info.latent_fixed)
  draw = jax.jit(info.rsample_log or info.rsample, static_argnums=2)(KEY, q, (256,))
  score = jax.jit(info.log_prob_log or info.log_prob)
  assert np.isfinite(score(q, draw)).all() and np.isfinite(score(p, draw)).all()


# Structure settings small enough that every joint family compiles in about a second.
JOINT_OPTIONS = {"flow_layers": 2, "iaf_steps": 2, "iaf_hidden": 8, "iaf_context": 4}


@pytest.mark.parametrize("name", pvj.joint_family_names())
def test_joint_family_draws_from_raw_outputs_carry_their_reference_density(name):
  # The trainer's path: raw encoder outputs -> from_flat -> one draw per example with its
  # log-density (gradients are checked per family in test_full_cov_gaussian.py, test_flows.py).
  info, d, batch = pvj.joint_info(name), 3, 4
  shared = info.init_shared(KEY, d, JOINT_OPTIONS) if info.init_shared else None
  raw = jax.random.normal(jax.random.key(1), (batch, info.num_raw(d, JOINT_OPTIONS)))
  keys = jax.random.split(jax.random.key(2), batch)
  dist = info.from_flat(raw, d, JOINT_OPTIONS, shared)
  z, log_q = jax.jit(joint.sample_with_log_prob)(keys, dist)
  assert z.shape == (batch, d) and log_q.shape == (batch,)
  assert np.isfinite(z).all() and np.isfinite(log_q).all()
  if info.log_prob is not None:
    np.testing.assert_allclose(info.log_prob(dist, z), log_q, rtol=1e-5, atol=1e-5)
  if name in JOINT_REFERENCES:
    np.testing.assert_allclose(log_q, JOINT_REFERENCES[name](dist, z), rtol=1e-5, atol=1e-4)
  else:
    assert name in NO_REFERENCE
