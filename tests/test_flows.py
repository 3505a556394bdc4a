"""Flow posteriors: log-densities against autodiff Jacobians, inverses, the MADE masks,
normalization by quadrature, reduction to Gaussians, gradients, extremes and validation.

Tests that compare to tight tolerances switch JAX to float64 locally (the ``x64`` fixture); the
rest run in the float32 the trainer uses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from pareto_vae_jax.distributions import flows
from pareto_vae_jax.distributions.gaussian import kl_normal


# Jitted once per shape: eager dispatch of the many small ops costs more than compiling.
_transform = jax.jit(flows.transform)
_log_prob = jax.jit(flows.log_prob)
_planar_inverse = jax.jit(flows.planar_inverse)
_iaf_inverse = jax.jit(flows.iaf_inverse)


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


def _planar(seed, batch, d, k, *, spread=1.0, dtype=np.float32):
  rng = np.random.default_rng(seed)
  return flows.PlanarFlow(
      rng.normal(size=batch + (d,)).astype(dtype),
      rng.uniform(0.5, 1.5, size=batch + (d,)).astype(dtype),
      (spread * rng.normal(size=batch + (k, d))).astype(dtype),
      (spread * rng.normal(size=batch + (k, d))).astype(dtype),
      rng.normal(size=batch + (k,)).astype(dtype))


def _made(seed, d, c, *, weight_scale=1.0, dtype=np.float32):
  """Three MADE steps of 8 hidden units (few distinct shapes: each costs a compile)."""
  params = flows.made_init(jax.random.key(seed), d, c, 8, 3, dtype)
  rng = np.random.default_rng(seed)
  # Non-zero biases too, so that no step is an odd function of its input.
  return jax.tree.map(
      lambda p: (weight_scale * np.asarray(p) + 0.3 * rng.normal(size=p.shape)).astype(dtype)
      if p.ndim == 1 else weight_scale * np.asarray(p), params)


def _iaf(seed, batch, d, c, *, weight_scale=1.0, dtype=np.float32):
  rng = np.random.default_rng(seed + 1)
  return flows.IAF(
      rng.normal(size=batch + (d,)).astype(dtype),
      rng.uniform(0.5, 1.5, size=batch + (d,)).astype(dtype),
      rng.normal(size=batch + (c,)).astype(dtype),
      _made(seed, d, c, weight_scale=weight_scale, dtype=dtype))


def _noise(seed, shape):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _std_normal_log_prob(z):
  return scipy.stats.norm.logpdf(np.asarray(z, np.float64)).sum(-1)


# --- log-densities against the change of variables through an autodiff Jacobian -------------


@jax.jit
def _log_q_and_jacobian(dist, eps):
  z_of_eps = lambda e: flows.transform(dist, e)[0]
  return flows.transform(dist, eps), jnp.linalg.slogdet(jax.vmap(jax.jacfwd(z_of_eps))(eps))


def _check_log_q_against_slogdet(dist, d):
  eps = np.random.default_rng(7).normal(size=(6, d))
  (_, log_q), (sign, log_abs_det) = _log_q_and_jacobian(dist, eps)
  np.testing.assert_array_equal(sign, 1.0)  # both flows preserve orientation
  np.testing.assert_allclose(log_q, _std_normal_log_prob(eps) - log_abs_det, rtol=1e-10,
                             atol=1e-10)


@pytest.mark.parametrize("d", [1, 2, 5])
def test_planar_log_q_is_the_base_density_minus_the_log_det_of_the_jacobian(x64, d):
  _check_log_q_against_slogdet(_planar(d, (), d, 4, spread=1.5, dtype=np.float64), d)


@pytest.mark.parametrize("d,c", [(1, 0), (3, 2), (6, 4)])
def test_iaf_log_q_is_the_base_density_minus_the_log_det_of_the_jacobian(x64, d, c):
  _check_log_q_against_slogdet(_iaf(d, (), d, c, weight_scale=1.5, dtype=np.float64), d)


def test_planar_layer_log_det_matches_slogdet_at_the_hinge_and_in_the_tails(x64):
  rng = np.random.default_rng(3)
  w = rng.normal(size=4)
  u = -3 * w  # w·u << -1: the layer is nearly singular where w·z + b = 0
  b = 0.4
  hinge = -b * w / (w @ w)
  z = np.stack([hinge, hinge + 1e-3 * w, hinge + 5 * w, rng.normal(size=4)])
  layer = lambda v: flows.planar_layer(v, u, w, b)
  log_det, jac = jax.jit(lambda z: (layer(z)[1], jax.vmap(jax.jacfwd(lambda v: layer(v)[0]))(z)))(z)
  np.testing.assert_allclose(log_det, jnp.linalg.slogdet(jac)[1], rtol=1e-8, atol=1e-10)


# --- invertibility --------------------------------------------------------------------------


def _extreme_u_w(seed, shape, dtype):
  """Directions with norms log-uniform in [1e-3, 1e2]; a third of the u anti-aligned with w."""
  rng = np.random.default_rng(seed)

  def vectors():
    v = rng.normal(size=shape)
    return v / np.linalg.norm(v, axis=-1, keepdims=True) * 10 ** rng.uniform(
        -3, 2, size=shape[:-1] + (1,))

  u, w = vectors(), vectors()
  anti = -w / np.linalg.norm(w, axis=-1, keepdims=True) * np.linalg.norm(u, axis=-1, keepdims=True)
  u = np.where(rng.random(shape[:-1] + (1,)) < 1 / 3, anti, u)
  return u.astype(dtype), w.astype(dtype)


def test_u_hat_keeps_w_dot_u_hat_above_minus_one_for_extreme_u_and_w():
  u, w = _extreme_u_w(0, (2000, 3), np.float32)
  u_hat = np.asarray(jax.jit(flows.planar_u_hat)(u, w), np.float64)
  w_dot_u_hat = np.sum(w * u_hat, -1)
  # Exact in closed form; the float32 dot product itself may round past -1 by a few ulps of
  # the terms it sums, whose size is about |u||w|.
  rounding = 8 * np.finfo(np.float32).eps * np.linalg.norm(u, axis=-1) * np.linalg.norm(w, axis=-1)
  assert np.all(w_dot_u_hat >= -1 - rounding)
  assert np.all(np.isfinite(u_hat))
  # At the hinge w·z + b = 0 the layer's determinant is 1 + w·û, its smallest value: its log
  # stays finite, not log 0.
  _, log_det = jax.jit(flows.planar_layer)(np.zeros_like(u), u, w, np.zeros(len(u), np.float32))
  assert np.all(np.isfinite(log_det))


def test_u_hat_is_rezende_and_mohamed_away_from_w_zero_and_u_at_w_zero(x64):
  u, w = _extreme_u_w(1, (500, 4), np.float64)
  w_dot_u = np.sum(w * u, -1, keepdims=True)
  m = -1 + np.logaddexp(0, w_dot_u)
  paper = u + (m - w_dot_u) * w / np.sum(w * w, -1, keepdims=True)
  keep = np.sum(w * w, -1) > 1e-4
  u_hat = jax.jit(flows.planar_u_hat)
  np.testing.assert_allclose(u_hat(u, w)[keep], paper[keep], rtol=1e-3, atol=1e-6)
  np.testing.assert_allclose(u_hat(u[0], np.zeros(4)), u[0])
  grad = jax.jit(jax.grad(lambda w: jnp.sum(flows.planar_u_hat(u[0], w) ** 2)))(np.zeros(4))
  assert np.all(np.isfinite(grad))


def test_planar_inverse_recovers_the_base_point_for_random_and_extreme_parameters(x64):
  u, w = _extreme_u_w(2, (300, 3, 3), np.float64)
  rng = np.random.default_rng(2)
  dist = flows.PlanarFlow(rng.normal(size=(300, 3)), rng.uniform(0.2, 2, size=(300, 3)), u, w,
                          rng.normal(size=(300, 3)))
  for d in [dist, _planar(4, (50,), 3, 5, spread=2.0, dtype=np.float64)]:
    eps = rng.normal(size=d.batch_shape + (3,))
    z, _ = _transform(d, eps)
    z0, eps_back = _planar_inverse(d, z)
    np.testing.assert_allclose(eps_back, eps, atol=1e-8)
    np.testing.assert_allclose(z0, d.loc + d.scale * eps, atol=1e-8)


def test_planar_log_prob_gradient_through_the_inverse_matches_finite_differences(x64):
  dist = _planar(8, (), 3, 3, spread=2.0, dtype=np.float64)
  log_q = jax.jit(lambda z, u: flows.log_prob(
      flows.PlanarFlow(dist.loc, dist.scale, u, dist.w, dist.b), z))
  rng = np.random.default_rng(8)
  z, dz, du = rng.normal(size=3), rng.normal(size=3), rng.normal(size=(3, 3))
  grad_z, grad_u = jax.jit(jax.grad(log_q, (0, 1)))(z, dist.u)
  h = 1e-6
  fd = (log_q(z + h * dz, dist.u + h * du) - log_q(z - h * dz, dist.u - h * du)) / (2 * h)
  np.testing.assert_allclose(fd, grad_z @ dz + np.sum(grad_u * du), rtol=1e-6)


def test_planar_inverse_is_backward_stable_in_float32():
  # In float32 a nearly singular layer (w·û ~ -1) amplifies rounding in the recovered base
  # point, so the check is that the forward map sends it back to z.
  u, w = _extreme_u_w(2, (300, 3, 3), np.float32)
  rng = np.random.default_rng(2)
  dist = flows.PlanarFlow(np.zeros((300, 3), np.float32), np.ones((300, 3), np.float32), u, w,
                          rng.normal(size=(300, 3)).astype(np.float32))
  z, _ = _transform(dist, rng.normal(size=(300, 3)).astype(np.float32))
  z_again, _ = _transform(dist, _planar_inverse(dist, z)[1])
  np.testing.assert_allclose(z_again, z, rtol=1e-5, atol=1e-4)


def test_iaf_inverse_recovers_eps_and_log_prob_agrees_with_the_draws(x64):
  base = _iaf(5, (40,), 3, 2, weight_scale=1.5, dtype=np.float64)
  dist = flows.IAF(base.loc, base.scale, base.context, base.made_params, forget_bias=2.0)
  eps = np.random.default_rng(5).normal(size=(40, 3))
  z, log_q = _transform(dist, eps)
  z0, eps_back = _iaf_inverse(dist, z)
  np.testing.assert_allclose(eps_back, eps, rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(z0, dist.loc + dist.scale * eps, rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(_log_prob(dist, z), log_q, rtol=1e-10)


# --- the autoregressive structure -----------------------------------------------------------


@pytest.mark.parametrize("step", [0, 1, 2])
def test_iaf_step_jacobian_is_triangular_in_the_step_ordering(x64, step):
  d, c = 6, 4
  params = _made(11, d, c, dtype=np.float64)
  rng = np.random.default_rng(step)
  z, h = rng.normal(size=d), rng.normal(size=c)

  def one_step(z, h):
    m, s = flows.made_apply(params[step], z, h, step)
    gate = jax.nn.sigmoid(s + 1.0)
    return gate * z + (1 - gate) * m, (m, gate)

  (jac, m_of_h), (_, gate) = jax.jit(jax.jacfwd(one_step, (0, 1), has_aux=True))(z, h)
  order = np.arange(d) if step % 2 == 0 else np.arange(d)[::-1]
  jac = np.asarray(jac)[np.ix_(order, order)]
  assert np.all(np.triu(jac, 1) == 0)
  assert np.all(np.tril(jac, -1)[np.tril_indices(d, -1)] != 0)
  np.testing.assert_allclose(np.diag(jac), gate[order], rtol=1e-12)
  # The context reaches every output, the first in the ordering included.
  assert np.all(np.abs(m_of_h).sum(-1) > 0)


# --- normalization and agreement of draws with the density ----------------------------------


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_density_integrates_to_one_and_its_kl_matches_the_draws(kind):
  if kind == "planar":
    dist = flows.PlanarFlow([0.3, -0.2], [0.8, 1.1], [[1.5, -0.5], [0.3, 1.2], [-1.0, 0.8]],
                            [[1.0, 2.0], [-1.5, 0.5], [0.7, 0.7]], [0.1, -0.4, 0.5])
  else:
    dist = flows.IAF([0.3, -0.2], [0.8, 1.1], [0.5, -1.0, 0.2],
                     _made(3, 2, 3))
  grid = np.linspace(-8, 8, 321, dtype=np.float32)
  zz = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1)
  log_q = np.asarray(_log_prob(dist, zz), np.float64)
  q = np.exp(log_q)
  mass = np.trapezoid(np.trapezoid(q, grid, axis=1), grid)
  assert abs(mass - 1) < 1e-2
  # KL(q || N(0, I)) by quadrature against Monte Carlo on draws with their own log q.
  integrand = q * (np.where(q > 0, log_q, 0.0) - _std_normal_log_prob(zz))
  kl_quad = np.trapezoid(np.trapezoid(integrand, grid, axis=1), grid)
  z, log_q_draws = _transform(dist, _noise(0, (20000, 2)))
  terms = np.asarray(log_q_draws, np.float64) - _std_normal_log_prob(z)
  assert abs(terms.mean() - kl_quad) < 4 * terms.std() / np.sqrt(terms.size) + 1e-3


# --- reduction to diagonal Gaussians --------------------------------------------------------
# Planar with w = 0 is z + sum_k u_k tanh(b_k) (û = u there; note u = 0 is *not* the
# identity: û = u + (m(0) - 0) w / |w|^2 with m(0) = log 2 - 1). IAF with zero MADE weights has
# m = b_m and s = b_s constant: an affine map per step.


def _gaussian_reductions():
  rng = np.random.default_rng(9)
  b, d, k = 3, 3, 3
  loc = rng.normal(size=(b, d)).astype(np.float32)
  scale = rng.uniform(0.3, 2.0, size=(b, d)).astype(np.float32)
  u = rng.normal(size=(b, k, d)).astype(np.float32)
  offsets = rng.normal(size=(b, k)).astype(np.float32)
  planar = flows.PlanarFlow(loc, scale, u, np.zeros_like(u), offsets)
  planar_ref = (loc + np.sum(u * np.tanh(offsets)[..., None], -2), scale)

  params = _made(9, d, 2)
  params = tuple({n: (p if n in ("b_m", "b_s") else jnp.zeros_like(p)) for n, p in step.items()}
                 for step in params)
  iaf = flows.IAF(loc, scale, rng.normal(size=(b, 2)).astype(np.float32), params)
  mean, std = loc.astype(np.float64), scale.astype(np.float64)
  for step in params:
    gate = 1 / (1 + np.exp(-(np.asarray(step["b_s"], np.float64) + 1.0)))
    mean, std = gate * mean + (1 - gate) * np.asarray(step["b_m"]), gate * std
  return [(planar, planar_ref), (iaf, (mean, std))]


@pytest.mark.parametrize("index", [0, 1], ids=["planar_w0", "iaf_zero_weights"])
def test_flow_with_trivial_parameters_has_the_known_gaussian_density(index):
  dist, (mean, std) = _gaussian_reductions()[index]
  z, log_q = _transform(dist, _noise(1, (50, 3, 3)))
  np.testing.assert_allclose(log_q, scipy.stats.norm(mean, std).logpdf(z).sum(-1), rtol=1e-5,
                             atol=1e-4)


@pytest.mark.parametrize("index", [0, 1], ids=["planar_w0", "iaf_zero_weights"])
def test_monte_carlo_kl_of_a_gaussian_reduction_matches_kl_normal(index):
  dist, (mean, std) = _gaussian_reductions()[index]
  z, log_q = _transform(dist, _noise(2, (4000, 3, 3)))
  terms = np.asarray(log_q, np.float64) - _std_normal_log_prob(z)
  exact = np.sum(kl_normal(mean, std, 0.0, 1.0), -1)
  np.testing.assert_array_less(np.abs(terms.mean(0) - exact),
                               4 * terms.std(0) / np.sqrt(len(terms)))


# --- shapes and broadcasting ----------------------------------------------------------------


def test_draws_broadcast_noise_against_the_batch_and_shared_parameters():
  rng = np.random.default_rng(0)
  shared = flows.PlanarFlow(np.zeros((5, 3)), np.ones((5, 3)), rng.normal(size=(2, 3)),
                            rng.normal(size=(2, 3)), np.zeros(2))
  assert shared.batch_shape == (5,) and shared.event_shape == (3,) and shared.num_layers == 2
  iaf = _iaf(0, (5,), 3, 2)
  key = jax.random.key(0)
  for dist in [shared, iaf]:
    shapes = lambda f: [x.shape for x in jax.tree.leaves(jax.eval_shape(f))]
    assert shapes(lambda: flows.rsample_and_log_prob(key, dist, (7,))) == [(7, 5, 3), (7, 5)]
    assert shapes(lambda: flows.rsample(key, dist)) == [(5, 3)]
    assert shapes(lambda: flows.transform(dist, np.zeros((4, 5, 3)))) == [(4, 5, 3), (4, 5)]
    assert shapes(lambda: flows.transform(dist, np.zeros(3))) == [(5, 3), (5,)]
    assert shapes(lambda: flows.log_prob(dist, np.zeros((2, 1, 3)))) == [(2, 5)]
  # Batched flow parameters with an unbatched base broadcast too.
  wide = flows.PlanarFlow(np.zeros(3), np.ones(3), rng.normal(size=(6, 2, 3)),
                          rng.normal(size=(6, 2, 3)), np.zeros((6, 2)))
  assert wide.batch_shape == (6,)
  assert jax.eval_shape(lambda: flows.rsample(key, wide, (4,))).shape == (4, 6, 3)
  assert jax.eval_shape(lambda: flows.planar_inverse(wide, np.zeros(3)))[0].shape == (6, 3)


def test_from_flat_lays_out_the_encoder_output():
  d, k, c = 3, 2, 2
  raw = np.arange(flows.planar_num_raw(d, k), dtype=np.float32) / 10
  assert raw.size == 2 * d + k * (2 * d + 1)
  dist = flows.planar_from_flat(np.stack([raw, -raw]), d, k)
  assert dist.batch_shape == (2,) and dist.num_layers == k
  np.testing.assert_allclose(dist.loc[0], raw[:d])
  np.testing.assert_allclose(dist.scale[0], 1e-4 + np.logaddexp(0, raw[d:2 * d]), rtol=1e-6)
  np.testing.assert_allclose(dist.u[0], raw[2 * d:2 * d + k * d].reshape(k, d))
  np.testing.assert_allclose(dist.w[0], raw[2 * d + k * d:2 * d + 2 * k * d].reshape(k, d))
  np.testing.assert_allclose(dist.b[1], -raw[-k:])
  raw = np.arange(flows.iaf_num_raw(d, c), dtype=np.float32)
  iaf = flows.iaf_from_flat(raw, d, c, _made(0, d, c))
  np.testing.assert_allclose(iaf.context, raw[2 * d:])
  assert iaf.num_steps == 3 and iaf.batch_shape == ()


# --- transformations and gradients ----------------------------------------------------------


def _mc_kl_planar(raw, key, d=3, k=3):
  z, log_q = flows.rsample_and_log_prob(key, flows.planar_from_flat(raw, d, k), (16,))
  return jnp.mean(log_q - jnp.sum(jax.scipy.stats.norm.logpdf(z), -1))


def _mc_kl_iaf(theta, key, d=3, c=2):
  raw, made = theta
  z, log_q = flows.rsample_and_log_prob(key, flows.iaf_from_flat(raw, d, c, made), (16,))
  return jnp.mean(log_q - jnp.sum(jax.scipy.stats.norm.logpdf(z), -1))


def _flow_inputs(kind):
  rng = np.random.default_rng(4)
  if kind == "planar":
    return _mc_kl_planar, rng.normal(size=(2, flows.planar_num_raw(3, 3)))
  return _mc_kl_iaf, (rng.normal(size=(2, flows.iaf_num_raw(3, 2))),
                      _made(4, 3, 2, dtype=np.float64))


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_grad_of_monte_carlo_kl_matches_finite_differences_under_jit(x64, kind):
  kl_fn, theta = _flow_inputs(kind)
  key = jax.random.key(3)
  value, grad = jax.jit(jax.value_and_grad(kl_fn))(theta, key)
  leaves = jax.tree.leaves(grad)
  assert all(np.all(np.isfinite(g)) for g in leaves)
  assert all(np.any(g != 0) for g in leaves)
  kl_jit = jax.jit(kl_fn)
  np.testing.assert_allclose(value, kl_jit(theta, key), rtol=1e-12)
  rng = np.random.default_rng(0)
  for _ in range(2):
    direction = jax.tree.map(lambda x: rng.normal(size=np.shape(x)), theta)
    shifted = lambda h: kl_jit(jax.tree.map(lambda x, v: x + h * v, theta, direction), key)
    h = 1e-5
    fd = (shifted(h) - shifted(-h)) / (2 * h)
    analytic = sum(np.sum(g * v) for g, v in zip(leaves, jax.tree.leaves(direction)))
    np.testing.assert_allclose(fd, analytic, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_vmap_over_the_batch_matches_the_batched_flow(kind):
  rng = np.random.default_rng(6)
  eps = rng.normal(size=(5, 4, 3)).astype(np.float32)
  if kind == "planar":
    raw = rng.normal(size=(4, flows.planar_num_raw(3, 2))).astype(np.float32)
    build = lambda r: flows.planar_from_flat(r, 3, 2)
  else:
    made = _made(6, 3, 2)
    raw = rng.normal(size=(4, flows.iaf_num_raw(3, 2))).astype(np.float32)
    build = lambda r: flows.iaf_from_flat(r, 3, 2, made)
  batched = _transform(build(raw), eps)
  mapped = jax.jit(jax.vmap(lambda r, e: flows.transform(build(r), e), in_axes=(0, 1),
                            out_axes=1))(raw, eps)
  for a, b in zip(batched, mapped):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


# --- extremes and validation ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_from_flat_with_raw_values_of_30_gives_finite_draws_densities_and_gradients(kind):
  d, k, c = 3, 3, 2
  n = flows.planar_num_raw(d, k) if kind == "planar" else flows.iaf_num_raw(d, c)
  signs = np.random.default_rng(0).choice([-1.0, 1.0], size=n)
  raw = (30 * np.stack([np.ones(n), -np.ones(n), signs, -signs])).astype(np.float32)
  made = _made(1, d, c, weight_scale=3.0)
  build = ((lambda r: flows.planar_from_flat(r, d, k)) if kind == "planar"
           else (lambda r: flows.iaf_from_flat(r, d, c, made)))

  def total_log_q(raw, eps):
    z, log_q = flows.transform(build(raw), eps)
    return jnp.sum(log_q), z

  (value, z), grad = jax.jit(jax.value_and_grad(total_log_q, has_aux=True))(
      raw, _noise(0, (64, 4, d)))
  assert np.isfinite(value) and np.all(np.isfinite(z)) and np.all(np.isfinite(grad))


BAD = [
    (lambda: flows.PlanarFlow(np.zeros(2), [1.0, 0.0], np.ones((1, 2)), np.ones((1, 2)),
                              np.zeros(1)), r"PlanarFlow: parameter 'scale' must be > 0"),
    (lambda: flows.PlanarFlow(np.zeros(2), np.ones(3), np.ones((1, 2)), np.ones((1, 2)),
                              np.zeros(1)), r"loc and scale need shape \[..., D\]"),
    (lambda: flows.PlanarFlow(np.zeros(2), np.ones(2), np.ones((1, 3)), np.ones((1, 3)),
                              np.zeros(1)), r"u and w need shape \[..., K, D\] with D = 2"),
    (lambda: flows.PlanarFlow(np.zeros(2), np.ones(2), np.ones((1, 2)), np.ones((2, 2)),
                              np.zeros(1)), r"u and w need shape"),
    (lambda: flows.PlanarFlow(np.zeros(2), np.ones(2), np.ones((2, 2)), np.ones((2, 2)),
                              np.zeros(3)), r"b needs shape \[..., K\] with K = 2"),
    (lambda: flows.PlanarFlow(np.zeros((3, 2)), np.ones((3, 2)), np.ones((4, 1, 2)),
                              np.ones((4, 1, 2)), np.zeros(1)),
     r"batch shapes .* do not broadcast"),
    (lambda: flows.planar_from_flat(np.zeros(7), 2, 1), r"planar_num_raw\(2, 1\) = 9"),
    (lambda: flows.IAF(np.zeros(3), -np.ones(3), np.zeros(2), _made(0, 3, 2)),
     r"IAF: parameter 'scale' must be > 0"),
    (lambda: flows.IAF(np.zeros(4), np.ones(4), np.zeros(2), _made(0, 3, 2)),
     r"step 0 has shapes .* latent dim 4 .*made_init\(key, latent_dim=4, context_dim=2"),
    (lambda: flows.IAF(np.zeros(3), np.ones(3), np.zeros(5), _made(0, 3, 2)),
     r"context dim 5"),
    (lambda: flows.IAF(np.zeros(3), np.ones(3), np.zeros(2), {"w_z": np.ones((3, 8))}),
     r"made_params must be a tuple of dicts"),
    (lambda: flows.IAF(np.zeros((4, 3)), np.ones((2, 3)), np.zeros(2), _made(0, 3, 2)),
     r"IAF: the batch shapes .* do not broadcast"),
    (lambda: flows.iaf_from_flat(np.zeros((2, 6)), 3, 2, _made(0, 3, 2)),
     r"iaf_num_raw\(3, 2\) = 8"),
    (lambda: flows.made_init(jax.random.key(0), 0, 1, 4, 2), r"latent_dim >= 1"),
]


@pytest.mark.parametrize("make,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_parameters_raise_value_errors_that_name_the_problem(make, message):
  with pytest.raises(ValueError, match=message):
    make()


def test_functions_reject_other_distributions_with_a_type_error():
  from pareto_vae_jax.distributions.gaussian import Gaussian
  with pytest.raises(TypeError, match="Expected a PlanarFlow or an IAF; got Gaussian"):
    flows.transform(Gaussian(0.0, 1.0), np.zeros(1))
