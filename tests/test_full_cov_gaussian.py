"""Full-covariance Gaussian latent: densities against scipy, samples against their moments, the
closed-form KLs against numpy (inverse and slogdet, float64) and Monte Carlo, gradients against
closed forms and finite differences, transformations, extremes and validation.

The float64 checks switch JAX to 64-bit inside their own tests (fixture ``x64``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from pareto_vae_jax.distributions import full_cov_gaussian as fc
from pareto_vae_jax.distributions.gaussian import Gaussian, kl_normal
from pareto_vae_jax.distributions.heads import softplus_floor


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


def _random_dist(rng, batch, d, *, off=0.5, dtype=np.float32):
  """A FullCovGaussian with a well-conditioned random L, and its parameters as float64 numpy."""
  loc = rng.normal(size=batch + (d,))
  lower = np.tril(rng.normal(size=batch + (d, d)) * off / np.sqrt(d), -1)
  scale_tril = lower + np.exp(rng.uniform(-0.7, 0.7, size=batch + (d,)))[..., None] * np.eye(d)
  dist = fc.FullCovGaussian(loc.astype(dtype), scale_tril.astype(dtype))
  return dist, np.asarray(dist.loc, np.float64), np.asarray(dist.scale_tril, np.float64)


def _kl_reference(loc_q, tril_q, loc_p, tril_p):
  """KL(q || p) of N(mu, L L^T) by the textbook formula with an explicit inverse (float64)."""
  cov_q, cov_p = tril_q @ tril_q.T, tril_p @ tril_p.T
  inv_p = np.linalg.inv(cov_p)
  diff = loc_p - loc_q
  return 0.5 * (np.trace(inv_p @ cov_q) + diff @ inv_p @ diff - len(loc_q)
                + np.linalg.slogdet(cov_p)[1] - np.linalg.slogdet(cov_q)[1])


def _scipy_logpdf(loc, scale_tril, z):
  return scipy.stats.multivariate_normal(loc, scale_tril @ scale_tril.T).logpdf(z)


# --- parameterization ---------------------------------------------------------------------------


def test_num_raw_counts_loc_lower_entries_and_diagonal():
  assert [fc.num_raw(d) for d in (1, 2, 3, 64)] == [2, 5, 9, 64 + 2016 + 64]
  with pytest.raises(ValueError, match="positive integer"):
    fc.num_raw(0)


def test_from_flat_lays_out_loc_then_lower_entries_then_diagonal():
  d = 3
  raw = np.linspace(-2.0, 2.0, fc.num_raw(d)).astype(np.float32)
  dist = fc.from_flat(raw, d)
  scale_tril = np.asarray(dist.scale_tril)
  np.testing.assert_array_equal(np.asarray(dist.loc), raw[:d])
  np.testing.assert_array_equal(scale_tril[np.tril_indices(d, -1)], raw[d:d + 3])
  np.testing.assert_allclose(np.diag(scale_tril), np.asarray(softplus_floor(raw[-d:])), rtol=1e-6)
  assert np.all(np.triu(scale_tril, 1) == 0)
  assert np.diag(np.asarray(fc.from_flat(np.full(fc.num_raw(d), -100.0), d).scale_tril)).min() > 0


def test_from_flat_rejects_the_wrong_number_of_raw_values():
  with pytest.raises(ValueError, match=r"num_raw\(3\) = 9"):
    fc.from_flat(np.zeros((2, 8)), 3)
  with pytest.raises(ValueError, match="D\\(D-1\\)/2 = 3"):
    fc.scale_tril_from_raw(np.zeros(2), np.zeros(3))


def test_batch_shapes_broadcast_and_repr_names_them():
  dist = fc.FullCovGaussian(np.zeros((4, 1, 3)), np.eye(3))
  assert dist.batch_shape == (4, 1) and dist.event_shape == (3,) and dist.event_ndim == 1
  assert dist.scale_tril.shape == (4, 1, 3, 3)
  assert repr(dist) == "FullCovGaussian(batch (4, 1), event (3,), float32)"
  assert fc.scale_tril_from_raw(np.zeros((5, 1, 3)), np.zeros((2, 3))).shape == (5, 2, 3, 3)


# --- density --------------------------------------------------------------------------------------


@pytest.mark.parametrize("d,batch", [(1, ()), (3, (4,)), (5, ()), (8, (2, 3))])
def test_log_prob_matches_scipy_multivariate_normal(d, batch):
  rng = np.random.default_rng(d)
  dist, loc, scale_tril = _random_dist(rng, batch, d)
  z = rng.normal(size=(6,) + batch + (d,)) * 2
  got = np.asarray(fc.log_prob(dist, z.astype(np.float32)))
  assert got.shape == (6,) + batch
  for idx in np.ndindex(*batch):
    expected = _scipy_logpdf(loc[idx], scale_tril[idx], z[(slice(None),) + idx])
    np.testing.assert_allclose(got[(slice(None),) + idx], expected, rtol=1e-5, atol=1e-4)


def test_transform_log_q_equals_log_prob_at_the_same_z():
  rng = np.random.default_rng(1)
  dist, loc, scale_tril = _random_dist(rng, (4,), 5)
  eps = rng.normal(size=(7, 4, 5)).astype(np.float32)
  z, log_q = fc.transform(dist, eps)
  assert z.shape == (7, 4, 5) and log_q.shape == (7, 4)
  np.testing.assert_allclose(z, loc + np.einsum("bij,kbj->kbi", scale_tril, eps), rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_allclose(log_q, fc.log_prob(dist, z), rtol=1e-5, atol=1e-5)


def test_moments_and_entropy_match_numpy_and_scipy():
  rng = np.random.default_rng(2)
  dist, loc, scale_tril = _random_dist(rng, (3,), 4)
  cov = scale_tril @ np.swapaxes(scale_tril, -1, -2)
  np.testing.assert_array_equal(fc.mean(dist), dist.loc)
  np.testing.assert_allclose(fc.covariance(dist), cov, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(fc.variance(dist), np.diagonal(cov, axis1=-2, axis2=-1), rtol=1e-6)
  expected = [scipy.stats.multivariate_normal(loc[b], cov[b]).entropy() for b in range(3)]
  np.testing.assert_allclose(fc.entropy(dist), expected, rtol=1e-6)


# --- sampling -------------------------------------------------------------------------------------


def test_rsample_has_sample_batch_event_shape_and_the_draws_rsample_and_log_prob_scores():
  dist, _, _ = _random_dist(np.random.default_rng(3), (2,), 3)
  key = jax.random.key(0)
  z = fc.rsample(key, dist, (5, 4))
  assert z.shape == (5, 4, 2, 3) and fc.rsample(key, dist).shape == (2, 3)
  z2, log_q = fc.rsample_and_log_prob(key, dist, (5, 4))
  np.testing.assert_array_equal(z, z2)
  np.testing.assert_allclose(log_q, fc.log_prob(dist, z), rtol=1e-5, atol=1e-5)


def test_sample_mean_and_covariance_match_loc_and_scale_tril_within_4_standard_errors():
  n = 40_000
  dist, loc, scale_tril = _random_dist(np.random.default_rng(4), (), 3, off=1.5)
  cov = scale_tril @ scale_tril.T
  z = np.asarray(fc.rsample(jax.random.key(1), dist, n), np.float64)
  se_mean = np.sqrt(np.diag(cov) / n)
  assert np.all(np.abs(z.mean(0) - loc) < 4 * se_mean)
  # Var(x_i x_j) = S_ii S_jj + S_ij^2 for centred jointly normal x.
  se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
  assert np.all(np.abs(np.cov(z.T) - cov) < 4 * se_cov)


def test_a_projection_of_samples_passes_a_ks_test_against_its_exact_normal():
  dist, loc, scale_tril = _random_dist(np.random.default_rng(5), (), 4, off=1.5)
  a = np.array([1.0, -2.0, 0.5, 3.0])
  z = np.asarray(fc.rsample(jax.random.key(2), dist, 20_000), np.float64)
  exact = scipy.stats.norm(a @ loc, np.sqrt(a @ scale_tril @ scale_tril.T @ a))
  assert scipy.stats.kstest(z @ a, exact.cdf).pvalue > 1e-3


# --- KL -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 4, 16])
def test_kl_full_cov_standard_matches_numpy_reference(d):
  dist, loc, scale_tril = _random_dist(np.random.default_rng(d), (3,), d, off=1.0)
  expected = [_kl_reference(loc[b], scale_tril[b], np.zeros(d), np.eye(d)) for b in range(3)]
  np.testing.assert_allclose(fc.kl_full_cov_standard(dist), expected, rtol=1e-5)


@pytest.mark.parametrize("d", [1, 4, 16])
def test_kl_full_cov_matches_numpy_reference_with_a_prior_shared_across_the_batch(d):
  rng = np.random.default_rng(10 + d)
  q, loc_q, tril_q = _random_dist(rng, (3,), d, off=1.0)
  p, loc_p, tril_p = _random_dist(rng, (), d, off=1.0)
  expected = [_kl_reference(loc_q[b], tril_q[b], loc_p, tril_p) for b in range(3)]
  np.testing.assert_allclose(fc.kl_full_cov(q, p), expected, rtol=1e-5)


@pytest.mark.parametrize("d", [1, 4, 16])
def test_kl_full_cov_diag_matches_numpy_reference(d):
  rng = np.random.default_rng(20 + d)
  q, loc_q, tril_q = _random_dist(rng, (3,), d, off=1.0)
  loc_p, scale_p = rng.normal(size=(3, d)), np.exp(rng.uniform(-1, 1, size=(3, d)))
  p = Gaussian(loc_p.astype(np.float32), scale_p.astype(np.float32))
  loc_p, scale_p = np.asarray(p.loc, np.float64), np.asarray(p.scale, np.float64)
  expected = [_kl_reference(loc_q[b], tril_q[b], loc_p[b], np.diag(scale_p[b])) for b in range(3)]
  np.testing.assert_allclose(fc.kl_full_cov_diag(q, p), expected, rtol=1e-5)


@pytest.mark.parametrize("prior", ["standard", "full", "diag"])
def test_kl_matches_monte_carlo_estimate_within_4_standard_errors(prior):
  rng = np.random.default_rng(30)
  q, loc_q, tril_q = _random_dist(rng, (), 3, off=1.5)
  if prior == "standard":
    kl, loc_p, tril_p = fc.kl_full_cov_standard(q), np.zeros(3), np.eye(3)
  elif prior == "full":
    p, loc_p, tril_p = _random_dist(rng, (), 3, off=1.5)
    kl = fc.kl_full_cov(q, p)
  else:
    p = Gaussian(np.float32([0.5, -1.0, 0.0]), np.float32([0.7, 1.5, 2.0]))
    loc_p, tril_p = np.asarray(p.loc, np.float64), np.diag(np.asarray(p.scale, np.float64))
    kl = fc.kl_full_cov_diag(q, p)
  z = np.asarray(fc.rsample(jax.random.key(3), q, 20_000), np.float64)
  log_ratio = _scipy_logpdf(loc_q, tril_q, z) - _scipy_logpdf(loc_p, tril_p, z)
  se = log_ratio.std() / np.sqrt(len(z))
  assert abs(log_ratio.mean() - float(kl)) < 4 * se


def test_kl_of_q_with_itself_is_zero():
  q, loc, scale_tril = _random_dist(np.random.default_rng(6), (4,), 8, off=2.0)
  np.testing.assert_allclose(fc.kl_full_cov(q, q), 0.0, atol=1e-5)
  diag_q = fc.FullCovGaussian(q.loc, jnp.eye(8) * jnp.diagonal(q.scale_tril, 0, -2, -1)[..., None])
  diag_p = Gaussian(q.loc, jnp.diagonal(q.scale_tril, 0, -2, -1))
  np.testing.assert_allclose(fc.kl_full_cov_diag(diag_q, diag_p), 0.0, atol=1e-6)
  np.testing.assert_allclose(fc.kl_full_cov_standard(fc.FullCovGaussian(np.zeros(8), np.eye(8))),
                             0.0, atol=0)


def test_kl_full_cov_to_the_standard_normal_equals_kl_full_cov_standard():
  q, _, _ = _random_dist(np.random.default_rng(7), (5,), 6, off=1.5)
  standard = fc.FullCovGaussian(np.zeros(6), np.eye(6))
  np.testing.assert_allclose(fc.kl_full_cov(q, standard), fc.kl_full_cov_standard(q), rtol=1e-6)


def test_one_dimensional_kls_reduce_to_kl_normal():
  loc_q, scale_q = np.float32([-1.0, 0.3, 2.0]), np.float32([0.2, 1.0, 3.0])
  loc_p, scale_p = np.float32([0.5, 0.3, -1.0]), np.float32([1.5, 1.0, 0.1])
  q = fc.FullCovGaussian(loc_q[:, None], scale_q[:, None, None])
  p = fc.FullCovGaussian(loc_p[:, None], scale_p[:, None, None])
  expected = kl_normal(loc_q, scale_q, loc_p, scale_p)
  np.testing.assert_allclose(fc.kl_full_cov(q, p), expected, rtol=1e-6)
  np.testing.assert_allclose(fc.kl_full_cov_diag(q, Gaussian(loc_p[:, None], scale_p[:, None])),
                             expected, rtol=1e-6)
  np.testing.assert_allclose(fc.kl_full_cov_standard(q), kl_normal(loc_q, scale_q, 0.0, 1.0),
                             rtol=1e-6)


def test_the_three_kls_agree_where_their_priors_coincide():
  rng = np.random.default_rng(8)
  q, _, _ = _random_dist(rng, (3,), 5, off=1.5)
  loc_p, scale_p = np.float32(rng.normal(size=5)), np.float32(np.exp(rng.normal(size=5)))
  full_p = fc.FullCovGaussian(loc_p, np.diag(scale_p))
  np.testing.assert_allclose(fc.kl_full_cov_diag(q, Gaussian(loc_p, scale_p)),
                             fc.kl_full_cov(q, full_p), rtol=1e-5)
  # A diagonal q against a factorized p is the sum of the univariate KLs.
  sigma_q = jnp.diagonal(q.scale_tril, 0, -2, -1)
  diag_q = fc.FullCovGaussian(q.loc, sigma_q[..., None] * jnp.eye(5))
  np.testing.assert_allclose(fc.kl_full_cov_diag(diag_q, Gaussian(loc_p, scale_p)),
                             kl_normal(q.loc, sigma_q, loc_p, scale_p).sum(-1), rtol=1e-5)


def test_kls_reject_different_latent_dimensions():
  q = fc.FullCovGaussian(np.zeros(3), np.eye(3))
  with pytest.raises(ValueError, match="q has D = 3 but p has D = 4"):
    fc.kl_full_cov(q, fc.FullCovGaussian(np.zeros(4), np.eye(4)))
  with pytest.raises(ValueError, match="q has D = 3 but p has D = 2"):
    fc.kl_full_cov_diag(q, Gaussian(np.zeros(2), np.ones(2)))


# --- gradients ------------------------------------------------------------------------------------


def test_reparameterized_gradient_of_a_quadratic_matches_its_closed_form():
  # E[z^T A z] = mu^T A mu + tr(A L L^T): d/dmu = 2 A mu, d/dL = 2 A L.
  n, d = 20_000, 3
  rng = np.random.default_rng(9)
  dist, loc, scale_tril = _random_dist(rng, (), d, off=1.5)
  a = rng.normal(size=(d, d))
  a = (a + a.T).astype(np.float32)
  key = jax.random.key(4)

  def mc(loc, scale_tril):
    z = fc.rsample(key, fc.FullCovGaussian(loc, scale_tril), n)
    return jnp.mean(jnp.einsum("ni,ij,nj->n", z, a, z))

  g_loc, g_tril = jax.grad(mc, (0, 1))(dist.loc, dist.scale_tril)
  # Per-draw gradients 2 A z and 2 (A z) eps^T give the Monte Carlo standard errors.
  z = np.asarray(fc.rsample(key, dist, n), np.float64)
  eps = np.linalg.solve(scale_tril, (z - loc).T).T
  az = z @ a.T
  se_loc = 2 * az.std(0) / np.sqrt(n)
  se_tril = 2 * np.einsum("ni,nj->nij", az, eps).std(0) / np.sqrt(n)
  assert np.all(np.abs(np.asarray(g_loc) - 2 * a @ loc) < 4 * se_loc + 1e-5)
  assert np.all(np.abs(np.asarray(g_tril) - 2 * a @ scale_tril) < 4 * se_tril + 1e-5)


@pytest.mark.usefixtures("x64")
def test_kl_gradients_match_central_finite_differences_in_float64():
  d = 3
  rng = np.random.default_rng(10)
  raw_q, raw_p = rng.normal(size=fc.num_raw(d)), rng.normal(size=fc.num_raw(d))
  raw_diag = rng.normal(size=2 * d)

  def kls(raw_q, raw_p, raw_diag):
    q = fc.from_flat(raw_q, d)
    diag = Gaussian(raw_diag[:d], softplus_floor(raw_diag[d:]))
    return (fc.kl_full_cov_standard(q) + 2 * fc.kl_full_cov(q, fc.from_flat(raw_p, d))
            + 3 * fc.kl_full_cov_diag(q, diag))

  f = jax.jit(kls)
  grads = jax.jit(jax.grad(kls, (0, 1, 2)))(raw_q, raw_p, raw_diag)
  h = 1e-6
  args = [raw_q, raw_p, raw_diag]
  for which, grad in enumerate(grads):
    assert grad.dtype == jnp.float64
    for i in range(len(args[which])):
      step = np.zeros_like(args[which])
      step[i] = h
      up = [x + step if j == which else x for j, x in enumerate(args)]
      down = [x - step if j == which else x for j, x in enumerate(args)]
      fd = (float(f(*up)) - float(f(*down))) / (2 * h)
      np.testing.assert_allclose(grad[i], fd, rtol=1e-6, atol=1e-7)


# --- float64 --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("x64")
def test_float64_log_prob_and_kls_match_references_to_1e_10():
  rng = np.random.default_rng(11)
  q, loc_q, tril_q = _random_dist(rng, (), 6, off=1.5, dtype=np.float64)
  p, loc_p, tril_p = _random_dist(rng, (), 6, off=1.5, dtype=np.float64)
  assert q.dtype == jnp.float64
  z = rng.normal(size=(5, 6))
  z_draw, log_q = fc.rsample_and_log_prob(jax.random.key(5), q, 4)
  assert z_draw.dtype == log_q.dtype == jnp.float64
  np.testing.assert_allclose(log_q, fc.log_prob(q, z_draw), rtol=1e-12)
  np.testing.assert_allclose(fc.log_prob(q, z), _scipy_logpdf(loc_q, tril_q, z), rtol=1e-12)
  np.testing.assert_allclose(fc.kl_full_cov(q, p), _kl_reference(loc_q, tril_q, loc_p, tril_p),
                             rtol=1e-10)
  np.testing.assert_allclose(fc.kl_full_cov_standard(q),
                             _kl_reference(loc_q, tril_q, np.zeros(6), np.eye(6)), rtol=1e-10)
  diag = Gaussian(loc_p, np.diag(tril_p))
  np.testing.assert_allclose(fc.kl_full_cov_diag(q, diag),
                             _kl_reference(loc_q, tril_q, loc_p, np.diag(np.diag(tril_p))),
                             rtol=1e-10)


# --- transformations ------------------------------------------------------------------------------


def test_jit_vmap_and_grad_compose_through_from_flat():
  d, b = 4, 5
  rng = np.random.default_rng(12)
  raw = rng.normal(size=(b, fc.num_raw(d))).astype(np.float32)
  eps = rng.normal(size=(3, b, d)).astype(np.float32)

  def per_example_kl(raw):
    return fc.kl_full_cov_standard(fc.from_flat(raw, d))

  np.testing.assert_allclose(jax.jit(jax.vmap(per_example_kl))(raw), per_example_kl(raw),
                             rtol=1e-6)

  def loss(raw, eps):
    q = fc.from_flat(raw, d)
    z, log_q = fc.transform(q, eps)
    return jnp.mean(jnp.sum(z ** 2, -1) + log_q) + jnp.mean(fc.kl_full_cov_standard(q))

  # The loss averages over the batch, so its gradient is the per-example gradients over b.
  batch_grad = jax.jit(jax.grad(loss))(raw, eps)
  per_example = jax.jit(jax.vmap(jax.grad(lambda r, e: loss(r[None], e[:, None]), (0,)),
                                 (0, 1)))(raw, eps)[0]
  assert np.all(np.isfinite(batch_grad)) and np.any(batch_grad != 0)
  np.testing.assert_allclose(batch_grad, per_example / b, rtol=1e-5, atol=1e-6)


def test_vmap_over_the_distribution_pytree_matches_the_batched_call():
  rng = np.random.default_rng(13)
  q, _, _ = _random_dist(rng, (4,), 3)
  p, _, _ = _random_dist(rng, (), 3)
  z = rng.normal(size=(4, 3)).astype(np.float32)
  np.testing.assert_allclose(jax.vmap(fc.log_prob)(q, z), fc.log_prob(q, z), rtol=1e-6)
  np.testing.assert_allclose(jax.vmap(fc.kl_full_cov, (0, None))(q, p), fc.kl_full_cov(q, p),
                             rtol=1e-6)
  assert jax.tree.leaves(q)[1] is q.scale_tril


# --- extremes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [1e-4, 1e4])
def test_extreme_diagonals_keep_densities_and_kls_accurate(sigma):
  d = 4
  rng = np.random.default_rng(14)
  scale_tril = sigma * (np.eye(d) + np.tril(rng.normal(size=(d, d)) * 0.3, -1))
  loc = rng.normal(size=d)
  q = fc.FullCovGaussian(loc.astype(np.float32), scale_tril.astype(np.float32))
  loc, scale_tril = np.asarray(q.loc, np.float64), np.asarray(q.scale_tril, np.float64)
  z = loc + sigma * rng.normal(size=(5, d))
  np.testing.assert_allclose(fc.log_prob(q, z.astype(np.float32)),
                             _scipy_logpdf(loc, scale_tril, z), rtol=1e-4)
  np.testing.assert_allclose(fc.kl_full_cov_standard(q),
                             _kl_reference(loc, scale_tril, np.zeros(d), np.eye(d)), rtol=1e-5)
  p = fc.FullCovGaussian(np.zeros(d, np.float32), np.eye(d, dtype=np.float32) / sigma)
  np.testing.assert_allclose(fc.kl_full_cov(q, p),
                             _kl_reference(loc, scale_tril, np.zeros(d), np.eye(d) / sigma),
                             rtol=1e-5)


def test_d64_in_float32_matches_the_float64_reference():
  d = 64
  rng = np.random.default_rng(15)
  q, loc_q, tril_q = _random_dist(rng, (), d, off=1.0)
  p, loc_p, tril_p = _random_dist(rng, (), d, off=1.0)
  np.testing.assert_allclose(fc.kl_full_cov(q, p), _kl_reference(loc_q, tril_q, loc_p, tril_p),
                             rtol=1e-5)
  np.testing.assert_allclose(fc.kl_full_cov_standard(q),
                             _kl_reference(loc_q, tril_q, np.zeros(d), np.eye(d)), rtol=1e-5)
  np.testing.assert_allclose(fc.kl_full_cov(q, q), 0.0, atol=1e-4)
  z = loc_q + rng.normal(size=(3, d)) @ tril_q.T
  np.testing.assert_allclose(fc.log_prob(q, z.astype(np.float32)),
                             _scipy_logpdf(loc_q, tril_q, z), rtol=1e-5)


def test_raw_values_of_magnitude_30_through_from_flat_stay_finite():
  d = 8
  rng = np.random.default_rng(16)
  raw = (30 * rng.choice([-1.0, 1.0], size=(4, fc.num_raw(d)))).astype(np.float32)
  prior_raw = (30 * rng.choice([-1.0, 1.0], size=(4, 2 * d))).astype(np.float32)
  moderate, _, _ = _random_dist(rng, (), d)

  def everything(raw, prior_raw):
    q = fc.from_flat(raw, d)
    z, log_q = fc.rsample_and_log_prob(jax.random.key(7), q, 2)
    diag = Gaussian(prior_raw[:, :d], softplus_floor(prior_raw[:, d:]))
    return {
        "z": z, "log_q": log_q, "entropy": fc.entropy(q), "cov": fc.covariance(q),
        "kl_standard": fc.kl_full_cov_standard(q), "kl_diag": fc.kl_full_cov_diag(q, diag),
        "kl_full": fc.kl_full_cov(q, moderate), "kl_self": fc.kl_full_cov(q, q),
    }

  for name, value in jax.jit(everything)(raw, prior_raw).items():
    assert np.all(np.isfinite(value)), name
  total = lambda *a: sum(jnp.sum(v) for v in jax.tree.leaves(everything(*a)))
  for grad in jax.jit(jax.grad(total, (0, 1)))(raw, prior_raw):
    assert np.all(np.isfinite(grad))


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("scale_tril,problem", [
    (np.array([[1.0, 0.5], [0.0, 1.0]]), "must be lower triangular"),
    (np.array([[1.0, 0.0], [0.3, 0.0]]), "diagonal of scale_tril must be > 0"),
    (np.array([[-1.0, 0.0], [0.3, 2.0]]), "diagonal of scale_tril must be > 0"),
    (np.array([[np.nan, 0.0], [0.3, 2.0]]), "diagonal of scale_tril must be > 0"),
], ids=["upper-entry", "zero-diagonal", "negative-diagonal", "nan-diagonal"])
def test_invalid_scale_tril_raises_value_error_naming_the_problem_and_the_fix(scale_tril,
                                                                              problem):
  with pytest.raises(ValueError, match=f"FullCovGaussian: .*{problem}.*from_flat"):
    fc.FullCovGaussian(np.zeros(2), scale_tril)


@pytest.mark.parametrize("loc,scale_tril,problem", [
    (np.zeros(3), np.eye(2), "loc has D = 3"),
    (np.zeros(2), np.zeros((2, 3)), r"scale_tril \[..., D, D\]"),
    (np.zeros((3, 2)), np.broadcast_to(np.eye(2), (4, 2, 2)), "do not broadcast"),
], ids=["event-mismatch", "not-square", "batch-mismatch"])
def test_inconsistent_shapes_raise_value_error(loc, scale_tril, problem):
  with pytest.raises(ValueError, match=problem):
    fc.FullCovGaussian(loc, scale_tril)


def test_values_are_not_checked_under_jit_or_when_unflattening():
  bad = jnp.array([[-1.0, 0.0], [0.3, 2.0]])
  log_p = jax.jit(lambda s: fc.log_prob(fc.FullCovGaussian(jnp.zeros(2), s), jnp.ones(2)))(bad)
  assert np.isnan(log_p)
  good = fc.FullCovGaussian(np.zeros(2), np.eye(2))
  zeroed = jax.tree.map(jnp.zeros_like, good)
  assert isinstance(zeroed, fc.FullCovGaussian) and float(zeroed.scale_tril.sum()) == 0
  with pytest.raises(AttributeError, match="immutable"):
    good.loc = jnp.ones(2)
