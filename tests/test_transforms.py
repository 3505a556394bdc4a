"""Every public function composes with jit, vmap, grad, lax.scan and pmap.

Draws and densities under jit and vmap are checked for every registered family
(tests/family_cases.py); the compositions through kl below for the closed-form families.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from family_cases import CASES

FAMILIES = [
    (pvj.Gaussian, (0.2, 1.5), (0.0, 1.0)),
    (pvj.LogNormal, (0.2, 1.5), (0.0, 1.0)),
    (pvj.Pareto, (0.7, 2.0), (1.5, 1.0)),
    (pvj.InverseGaussian, (0.7, 2.0), (1.0, 1.0)),
]
IDS = [f[0].__name__ for f in FAMILIES]


def loss(q, p, key):
  """A scalar that uses every public function."""
  z = pvj.rsample(key, q, (8,))
  value = jnp.mean(pvj.log_prob(q, z) - pvj.log_prob(p, z)) + jnp.sum(pvj.kl(q, p))
  if pvj.family_info(q).rsample_log is not None:
    value += jnp.mean(pvj.rsample_log(key, q, (8,)))
  return value + jnp.sum(jnp.where(jnp.isfinite(pvj.mean(q)), pvj.mean(q), 0.0))


@pytest.mark.parametrize("family,q_params,p_params", FAMILIES, ids=IDS)
def test_jit_matches_eager_and_grad_is_finite(family, q_params, p_params):
  q, p, key = family(*q_params), family(*p_params), jax.random.key(0)
  np.testing.assert_allclose(jax.jit(loss)(q, p, key), loss(q, p, key), rtol=1e-5)
  grads = jax.jit(jax.grad(loss))(q, p, key)
  assert type(grads) is family
  assert all(np.isfinite(g) for g in grads.params)


@pytest.mark.parametrize("family,q_params,p_params", FAMILIES, ids=IDS)
def test_vmap_over_a_batch_of_distributions_matches_a_loop(family, q_params, p_params):
  scales = jnp.array([0.5, 1.0, 2.0])
  qs = family(*(jnp.asarray(v) * scales for v in q_params))
  p = family(*p_params)
  keys = jax.random.split(jax.random.key(1), 3)
  batched = jax.vmap(loss, in_axes=(0, None, 0))(qs, p, keys)
  looped = [loss(family(*(v * s for v in q_params)), p, k) for s, k in zip(scales, keys)]
  np.testing.assert_allclose(batched, np.array(looped), rtol=1e-5)


@pytest.mark.parametrize("family,q_params,p_params", FAMILIES, ids=IDS)
def test_distribution_is_a_lax_scan_carry(family, q_params, p_params):
  p = family(*p_params)

  def step(q, key):
    g = jax.grad(loss)(q, p, key)
    q = jax.tree.map(lambda v, dv: v * jnp.exp(-0.01 * jnp.tanh(dv)), q, g)
    return q, loss(q, p, key)

  q, losses = jax.lax.scan(step, family(*q_params), jax.random.split(jax.random.key(2), 5))
  assert type(q) is family and losses.shape == (5,) and np.isfinite(losses).all()


@pytest.mark.parametrize("name", pvj.family_names())
def test_rsample_and_log_prob_are_unchanged_under_jit_and_vmap(name):
  # As the trainer draws: jit(vmap(rsample)) with one key per example.
  dist, n = CASES[name].batch, 20_000
  keys = jax.random.split(jax.random.key(13), dist.batch_shape[0])
  one_by_one = jnp.stack([pvj.rsample(k, type(dist)(*(p[i] for p in dist.params)), (n,))
                          for i, k in enumerate(keys)])
  jitted = jax.jit(jax.vmap(lambda k, d: pvj.rsample(k, d, (n,))))(keys, dist)
  # Under jit XLA may fuse loc + scale * t (FMA), moving a draw by up to an ulp of loc.
  np.testing.assert_allclose(jitted, one_by_one, rtol=CASES[name].jit_rtol, atol=1e-6)
  z = jnp.asarray(one_by_one[:, :7].T)  # (7, batch), inside every support
  eager = pvj.log_prob(dist, z)
  np.testing.assert_allclose(jax.jit(pvj.log_prob)(dist, z), eager, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(jax.vmap(pvj.log_prob, (0, 1), 1)(dist, z), eager, rtol=1e-6,
                             atol=1e-6)


def test_pmap_over_four_devices_matches_per_device_eager():
  assert jax.local_device_count() == 4, "tests/conftest.py should force four host devices"
  qs = pvj.Pareto(jnp.array([0.5, 1.0, 2.0, 4.0]), jnp.array([1.0, 2.0, 1.0, 3.0]))
  p = pvj.Pareto(1.0, 1.0)
  keys = jax.random.split(jax.random.key(3), 4)

  @functools.partial(jax.pmap, axis_name="d", in_axes=(0, None, 0))
  def per_device(q, p, key):
    value, grads = jax.value_and_grad(loss)(q, p, key)
    return jax.lax.pmean(value, "d"), grads

  mean_loss, grads = per_device(qs, p, keys)
  eager = [loss(pvj.Pareto(a, s), p, k) for a, s, k in zip(qs.alpha, qs.scale, keys)]
  np.testing.assert_allclose(mean_loss, np.full(4, np.mean(eager)), rtol=1e-5)
  assert type(grads) is pvj.Pareto and grads.alpha.shape == (4,)


def test_kl_pareto_is_an_elementwise_function_under_vmap_and_grad():
  alpha_q = jnp.array([0.2, 1.0, 5.0])
  d_dq = jax.vmap(jax.grad(pvj.kl_pareto))(alpha_q, jnp.ones(3))
  # d/da_q [log a_q - log a_p + a_p/a_q - 1] = 1/a_q - a_p/a_q^2.
  np.testing.assert_allclose(d_dq, 1 / alpha_q - 1 / alpha_q ** 2, rtol=1e-5)
