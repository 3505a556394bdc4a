"""to_tfp and from_tfp against TensorFlow Probability's JAX substrate: densities, round trips and
the refusals."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from pareto_vae_jax.distributions import full_cov_gaussian as fcg
from pareto_vae_jax.distributions import mixture
# After pareto_vae_jax, whose interop module lets TFP 0.25 import with jax >= 0.7.
from tensorflow_probability.substrates import jax as tfp  # noqa: E402

tfd = tfp.distributions
KEY = jax.random.key(0)
OPTIONS = {"flow_layers": 2, "iaf_steps": 2, "iaf_hidden": 8, "iaf_context": 3}

# Several parameter values per family, tails from heavy to light.
CASES = [
    pvj.Gaussian(jnp.array([-2.0, 0.0, 3.0]), jnp.array([0.1, 1.0, 5.0])),
    pvj.LogNormal(jnp.array([-2.0, 0.0, 3.0]), jnp.array([0.1, 1.0, 2.5])),
    pvj.Pareto(jnp.array([0.3, 0.8, 2.5, 40.0]), jnp.array([1.0, 0.2, 3.0, 10.0])),
    pvj.InverseGaussian(jnp.array([0.05, 1.0, 3.0, 20.0]), jnp.array([0.2, 1.0, 50.0, 3.0])),
    pvj.GeneralizedPareto(jnp.array([1.0, 0.5, 2.0, 3.0, 1.0]),
                          jnp.array([-0.4, 0.0, 0.5, 2.0, 0.1]),
                          jnp.array([0.0, -1.0, 0.0, 2.0, 5.0])),
    pvj.Lomax(jnp.array([0.3, 1.0, 2.0, 30.0]), jnp.array([1.0, 0.5, 5.0, 2.0])),
    pvj.StudentT(jnp.array([0.7, 1.0, 5.0, 100.0]), jnp.array([0.0, -2.0, 1.0, 3.0]),
                 jnp.array([1.0, 0.3, 2.0, 1.0])),
    pvj.Weibull(jnp.array([0.3, 1.0, 2.0, 8.0]), jnp.array([1.0, 0.5, 3.0, 2.0])),
    pvj.FullCovGaussian(jnp.array([[0.0, 1.0], [-2.0, 0.5]]),
                        jnp.array([[[1.0, 0.0], [0.5, 2.0]], [[0.3, 0.0], [-1.0, 0.1]]])),
    mixture.Mixture(jnp.array([0.3, -1.0, 0.0]),
                    pvj.Pareto(jnp.array([[0.5, 2.0], [3.0, 1.0], [1.5, 10.0]]), 1.5)),
    mixture.Mixture(jnp.array([0.0, 2.0]),
                    pvj.Lomax(jnp.array([[0.5, 2.0], [3.0, 1.0]]), jnp.array([1.0, 4.0]))),
]
IDS = [f"Mixture-{type(d.components).__name__}" if isinstance(d, mixture.Mixture)
       else type(d).__name__ for d in CASES]


def _log_prob(dist, z):
  if isinstance(dist, mixture.Mixture):
    return mixture.log_prob(dist, z)
  if isinstance(dist, pvj.FullCovGaussian):
    return fcg.log_prob(dist, z)
  return pvj.log_prob(dist, z)


def _points(dist):
  """Draws of ``dist`` itself: points inside the support, across its bulk and tails."""
  if isinstance(dist, mixture.Mixture):
    return mixture.rsample(KEY, dist, (20,))
  if isinstance(dist, pvj.FullCovGaussian):
    return fcg.rsample(KEY, dist, (20,))
  return pvj.rsample(KEY, dist, (20,))


def _assert_same(got, expected):
  assert type(got) is type(expected)
  assert jax.tree.structure(got) == jax.tree.structure(expected)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), got,
               expected)


@pytest.mark.parametrize("dist", CASES, ids=IDS)
def test_to_tfp_log_prob_equals_log_prob_inside_the_support(dist):
  z = jax.jit(_points)(dist)
  assert np.all(np.isfinite(np.asarray(z)))
  expected = np.asarray(jax.jit(_log_prob)(dist, z))
  assert np.all(np.isfinite(expected))
  # Under jit, as a trainer would call it (and one compilation instead of many eager ops).
  got = jax.jit(lambda dist, z: pvj.to_tfp(dist).log_prob(z))(dist, z)
  np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("dist", CASES, ids=IDS)
def test_from_tfp_of_to_tfp_gives_the_same_parameters(dist):
  family = type(dist.components if isinstance(dist, mixture.Mixture) else dist)
  _assert_same(pvj.from_tfp(pvj.to_tfp(dist), family=family), dist)


def test_tfp_names_of_the_parameters():
  # The renamings the README's table promises, read off TFP's own attributes.
  assert float(pvj.to_tfp(pvj.Pareto(2.0, 3.0)).concentration) == 2.0
  ig = pvj.to_tfp(pvj.InverseGaussian(mean=2.0, shape=5.0))
  assert (float(ig.loc), float(ig.concentration)) == (2.0, 5.0)
  gpd = pvj.to_tfp(pvj.GeneralizedPareto(scale=2.0, shape=0.5, loc=1.0))
  assert (float(gpd.loc), float(gpd.scale), float(gpd.concentration)) == (1.0, 2.0, 0.5)
  assert isinstance(pvj.to_tfp(pvj.Gaussian(0.0, 1.0)), tfd.Normal)


def test_a_lomax_is_a_generalized_pareto_at_loc_zero_unless_asked_for():
  lomax = pvj.Lomax(jnp.array([0.5, 4.0]), jnp.array([2.0, 1.0]))
  gpd = pvj.from_tfp(pvj.to_tfp(lomax))
  _assert_same(gpd, pvj.GeneralizedPareto(jnp.array([4.0, 0.25]), jnp.array([2.0, 0.25]),
                                          jnp.zeros(2)))
  z = jnp.array([[0.01, 0.5], [3.0, 1e4]])
  np.testing.assert_allclose(pvj.log_prob(gpd, z), pvj.log_prob(lomax, z), rtol=1e-5)


@pytest.mark.parametrize("loc, concentration, match", [
    (1.0, 0.5, "only where loc = 0"),
    (0.0, -0.5, "only where concentration > 0"),
    (0.0, 0.0, "only where concentration > 0"),
])
def test_from_tfp_refuses_a_generalized_pareto_that_is_not_a_lomax(loc, concentration, match):
  with pytest.raises(ValueError, match=match):
    pvj.from_tfp(tfd.GeneralizedPareto(loc, 1.0, concentration), family=pvj.Lomax)


def test_to_tfp_and_log_prob_agree_under_jit_and_grad():
  def loss(alpha, via_tfp):
    dist = pvj.Pareto(alpha, 1.5)
    z = jnp.array([1.6, 3.0, 80.0])
    return jnp.sum(pvj.to_tfp(dist).log_prob(z) if via_tfp else pvj.log_prob(dist, z))

  grad = jax.jit(jax.grad(loss), static_argnums=1)
  np.testing.assert_allclose(grad(0.7, True), grad(0.7, False), rtol=1e-5)


TESTED = {type(d) for d in CASES}


@pytest.mark.parametrize("name", pvj.family_names())
def test_every_registered_family_is_in_the_cases_or_refused_by_name(name):
  info = pvj.family_info(name)
  if info.cls not in TESTED:
    with pytest.raises(TypeError, match=f"{info.cls.__name__} has no TFP equivalent"):
      pvj.to_tfp(info.standard_prior((3,)))


@pytest.mark.parametrize("name", pvj.joint_family_names())
def test_every_joint_family_is_in_the_cases_or_refused_by_name(name):
  info = pvj.joint_info(name)
  if info.cls not in TESTED:
    d = 3
    shared = info.init_shared(KEY, d, OPTIONS) if info.init_shared else None
    dist = info.from_flat(jnp.zeros((2, info.num_raw(d, OPTIONS))), d, OPTIONS, shared)
    with pytest.raises(TypeError, match=f"{info.cls.__name__} has no TFP equivalent"):
      pvj.to_tfp(dist)


def test_to_tfp_refuses_a_mixture_of_a_family_without_equivalent():
  mix = mixture.Mixture(jnp.zeros(2), pvj.SymmetricPareto(jnp.zeros((2, 3)), 2.0))
  with pytest.raises(TypeError, match="SymmetricPareto has no TFP equivalent"):
    pvj.to_tfp(mix)


def test_to_tfp_refuses_what_is_not_a_distribution_of_the_package():
  with pytest.raises(TypeError, match="takes a pareto_vae_jax distribution.*got Normal"):
    pvj.to_tfp(tfd.Normal(0.0, 1.0))


def test_from_tfp_refuses_a_tfp_distribution_without_equivalent():
  with pytest.raises(TypeError, match="no pareto_vae_jax family for .*Laplace.*Supported.*Normal"):
    pvj.from_tfp(tfd.Laplace(0.0, 1.0))


def test_from_tfp_refuses_a_family_that_cannot_express_it():
  with pytest.raises(TypeError, match="Normal cannot be converted to family=Pareto"):
    pvj.from_tfp(tfd.Normal(0.0, 1.0), family=pvj.Pareto)


@pytest.mark.parametrize("components", [
    tfd.Normal(jnp.zeros(2), 1.0),
    tfd.Independent(tfd.Normal(jnp.zeros((2, 3, 4)), 1.0), reinterpreted_batch_ndims=2),
    tfd.Independent(tfd.MultivariateNormalTriL(jnp.zeros((2, 3, 2)), jnp.eye(2)), 1),
], ids=["not-independent", "two-axes", "joint-components"])
def test_from_tfp_refuses_a_mixture_it_cannot_express(components):
  mix = tfd.MixtureSameFamily(tfd.Categorical(logits=jnp.zeros(2)), components)
  with pytest.raises(TypeError, match="MixtureSameFamily|factorized family"):
    pvj.from_tfp(mix)


def test_without_tfp_the_error_names_the_pip_command(monkeypatch):
  for name in [m for m in sys.modules if m.startswith("tensorflow_probability")]:
    monkeypatch.setitem(sys.modules, name, None)
  monkeypatch.setitem(sys.modules, "tensorflow_probability", None)
  with pytest.raises(ImportError, match="pip install tensorflow-probability"):
    pvj.to_tfp(pvj.Pareto(2.0))
  with pytest.raises(ImportError, match="pip install tensorflow-probability"):
    pvj.from_tfp(None)
