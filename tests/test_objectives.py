"""Objectives against independent references: numpy formulas, scipy densities, exact limits, and
the linear-Gaussian model whose marginal likelihood and posterior are known in closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats

import pareto_vae_jax as pvj
from pareto_vae_jax import objectives


def _numpy_bce_log_likelihood(logits, x, eps=1e-12):
  p = np.clip(1 / (1 + np.exp(-logits)), eps, 1 - eps)
  return x * np.log(p) + (1 - x) * np.log1p(-p)


@pytest.mark.parametrize("binarized", [False, True])
def test_bernoulli_log_likelihood_matches_numpy_bce_on_moderate_logits(binarized):
  rng = np.random.default_rng(0)
  logits = rng.uniform(-8, 8, (4, 5, 6, 2))
  x = rng.uniform(0, 1, logits.shape)
  if binarized:
    x = (x > 0.5).astype(np.float64)
  expected = _numpy_bce_log_likelihood(logits, x).sum(axis=(1, 2, 3))
  got = objectives.bernoulli_log_likelihood(logits.astype(np.float32), x.astype(np.float32))
  assert got.shape == (4,)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("logit", [100.0, -100.0])
@pytest.mark.parametrize("x", [0.0, 0.3, 1.0])
def test_bernoulli_log_likelihood_is_finite_and_exact_at_saturated_logits(logit, x):
  # Analytic limit: log s(100) = -e^-100 ~ 0 and log s(-100) = -100 - e^-100 ~ -100.
  expected = -(1 - x) * 100 if logit > 0 else -x * 100
  fn = lambda l: objectives.bernoulli_log_likelihood(l, jnp.float32(x), event_ndim=0)
  value, grad = jax.value_and_grad(fn)(jnp.float32(logit))
  assert np.isfinite(value) and np.isfinite(grad)
  np.testing.assert_allclose(value, expected, atol=1e-5)
  # d/dl [x log s(l) + (1 - x) log s(-l)] = x - s(l).
  np.testing.assert_allclose(grad, x - (logit > 0), atol=1e-6)


def test_bernoulli_log_likelihood_keeps_relative_precision_of_tiny_losses():
  # -log(1 + e^-20) = -2.06e-9 for a confident correct pixel; x l - softplus(l) rounds it to 0.
  got = objectives.bernoulli_log_likelihood(jnp.float32(20.0), 1.0, event_ndim=0)
  np.testing.assert_allclose(got, -np.log1p(np.exp(-20.0)), rtol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 0.1, np.array([0.5, 2.0, 3.0])])
def test_gaussian_log_likelihood_matches_scipy_norm_logpdf_summed(scale):
  rng = np.random.default_rng(1)
  mean = rng.normal(size=(4, 2, 3))
  x = mean + rng.normal(size=mean.shape)
  expected = stats.norm.logpdf(x, mean, scale).sum(axis=(1, 2))
  got = objectives.gaussian_log_likelihood(mean.astype(np.float32), x.astype(np.float32),
                                           scale=scale, event_ndim=2)
  assert got.shape == (4,)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_mean_squared_error_matches_numpy():
  rng = np.random.default_rng(2)
  pred, x = rng.normal(size=(2, 5, 7, 3, 1))
  expected = np.mean((pred - x) ** 2, axis=(1, 2, 3))
  got = objectives.mean_squared_error(pred.astype(np.float32), x.astype(np.float32))
  assert got.shape == (5,)
  np.testing.assert_allclose(got, expected, rtol=1e-5)


RECONSTRUCTIONS = [objectives.bernoulli_log_likelihood, objectives.gaussian_log_likelihood,
                   objectives.mean_squared_error]


@pytest.mark.parametrize("fn", RECONSTRUCTIONS)
def test_reconstruction_terms_broadcast_a_leading_sample_axis_against_targets(fn):
  rng = np.random.default_rng(3)
  out = rng.normal(size=(3, 4, 6)).astype(np.float32)
  x = rng.uniform(size=(4, 6)).astype(np.float32)
  got = fn(out, x, event_ndim=1)
  assert got.shape == (3, 4)
  np.testing.assert_allclose(got[1], fn(out[1], x, event_ndim=1), rtol=1e-6)


@pytest.mark.parametrize("fn", RECONSTRUCTIONS)
def test_reconstruction_terms_reject_event_ndim_beyond_the_input_rank(fn):
  with pytest.raises(ValueError, match="event_ndim=3"):
    fn(jnp.zeros((8, 784)), jnp.zeros((8, 784)))


@pytest.mark.parametrize("warmup_steps", [10, 1000])
def test_kl_warmup_is_linear_then_one(warmup_steps):
  t = warmup_steps
  for step, expected in [(0, 0.0), (t // 2, 0.5), (t, 1.0), (2 * t, 1.0)]:
    np.testing.assert_allclose(objectives.kl_warmup(step, warmup_steps=t), expected)


def test_kl_warmup_under_jit_with_a_traced_integer_step():
  fn = jax.jit(lambda step: objectives.kl_warmup(step, warmup_steps=8))
  steps = jnp.arange(0, 20, dtype=jnp.int32)
  got = jnp.stack([fn(s) for s in steps])
  np.testing.assert_allclose(got, np.minimum(1.0, np.arange(20) / 8), rtol=1e-6)
  np.testing.assert_allclose(jax.vmap(fn)(steps), got)


@pytest.mark.parametrize("warmup_steps", [0, -5])
def test_kl_warmup_without_warmup_steps_is_one_from_the_start(warmup_steps):
  assert float(objectives.kl_warmup(0, warmup_steps=warmup_steps)) == 1.0
  traced = jax.jit(objectives.kl_warmup)(jnp.int32(0), warmup_steps=jnp.int32(warmup_steps))
  assert float(traced) == 1.0


def _kl_with_dims_below_and_above(bits):
  # Columns 0 and 2 average far below the floor, columns 1 and 3 far above it.
  rng = np.random.default_rng(4)
  kl = rng.exponential(size=(8, 4)) * np.array([0.1 * bits, 3 * bits, 0.2 * bits, 5 * bits])
  return kl.astype(np.float32)


def test_free_bits_is_the_floored_batch_mean():
  kl = _kl_with_dims_below_and_above(bits=0.5)
  got = objectives.free_bits(kl, bits=0.5)
  assert got.shape == (4,)
  np.testing.assert_allclose(got, np.maximum(0.5, kl.mean(axis=0)), rtol=1e-6)
  np.testing.assert_allclose(objectives.free_bits(kl, bits=0.0), kl.mean(axis=0), rtol=1e-6)


def test_free_bits_gradient_vanishes_below_the_floor_and_is_one_over_batch_above():
  kl = _kl_with_dims_below_and_above(bits=0.5)
  grad = jax.grad(lambda k: jnp.sum(objectives.free_bits(k, bits=0.5)))(kl)
  above = kl.mean(axis=0) > 0.5
  np.testing.assert_array_equal(above, [False, True, False, True])
  np.testing.assert_array_equal(grad, np.where(above, 1 / kl.shape[0], 0.0) * np.ones_like(kl))


def test_elbo_is_log_likelihood_minus_beta_kl():
  ll = jnp.array([-100.0, -80.0, -120.0])
  kl = jnp.array([10.0, 0.0, 25.0])
  np.testing.assert_allclose(objectives.elbo(ll, kl), [-110.0, -80.0, -145.0])
  np.testing.assert_allclose(objectives.elbo(ll, kl, beta=0.2), [-102.0, -80.0, -125.0])
  np.testing.assert_allclose(objectives.elbo(ll, kl, beta=0.0), ll)
  assert objectives.elbo(ll, kl).shape == (3,)


def test_elbo_rejects_a_kl_not_summed_over_latent_dims():
  with pytest.raises(ValueError, match="sum the KL"):
    objectives.elbo(jnp.zeros(4), jnp.zeros((4, 4)))


def test_iwae_bound_with_one_sample_is_the_single_sample_elbo():
  rng = np.random.default_rng(5)
  ll, lp, lq = rng.normal(-5, 2, size=(3, 1, 6)).astype(np.float32)
  got = objectives.iwae_bound(ll, lp, lq)
  assert got.shape == (6,)
  np.testing.assert_allclose(got, objectives.elbo(ll[0], lq[0] - lp[0]), rtol=1e-6)


def test_iwae_bound_matches_scipy_logsumexp_and_survives_huge_negative_log_weights():
  # Every exp(log w) underflows to 0 here; the naive log(mean(exp(log w))) would be -inf.
  log_w = np.array([[-1e4, -1e30, -np.inf], [-1e4 + 2.0, -1e30, -50.0], [-1e4 - 1, -1e30, -60.0]])
  zeros = np.zeros_like(log_w)
  got = objectives.iwae_bound(log_w.astype(np.float32), zeros, zeros)
  expected = special.logsumexp(log_w, axis=0) - np.log(3)
  assert np.isfinite(got).all()
  np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_iwae_bound_rejects_mismatched_shapes():
  with pytest.raises(ValueError, match="share one shape"):
    objectives.iwae_bound(jnp.zeros((5, 4)), jnp.zeros((5, 4, 2)), jnp.zeros((5, 4)))


# Linear-Gaussian model: z ~ N(0, 1), x | z ~ N(z, s^2). Exactly p(x) = N(x; 0, 1 + s^2) and
# p(z | x) = N(x / (1 + s^2), s^2 / (1 + s^2)).
NOISE = 0.5
X = np.array([-2.0, 0.3, 2.5], np.float32)
POST_MEAN = X / (1 + NOISE**2)
POST_SD = np.sqrt(NOISE**2 / (1 + NOISE**2)) * np.ones_like(X)
LOG_MARGINAL = stats.norm.logpdf(X.astype(np.float64), 0, np.sqrt(1 + NOISE**2))


def _log_weight_terms(key, q, sample_shape):
  """(log p(x|z), log p(z), log q(z|x)) at z ~ q, each of shape sample_shape + [len(X)]."""
  z = pvj.rsample(key, q, sample_shape)
  return (pvj.log_prob(pvj.Gaussian(z, NOISE), X), pvj.log_prob(pvj.Gaussian(0.0, 1.0), z),
          pvj.log_prob(q, z))


def test_iwae_bound_is_the_exact_log_likelihood_when_q_is_the_exact_posterior():
  # Every weight p(x, z) / p(z | x) equals p(x): the bound has no bias and no variance for any k.
  @jax.jit
  def bounds(key):
    terms = _log_weight_terms(key, pvj.Gaussian(POST_MEAN, POST_SD), (50,))
    return [objectives.iwae_bound(*(t[:k] for t in terms)) for k in (1, 5, 50)]

  for bound in bounds(jax.random.key(6)):
    np.testing.assert_allclose(bound, LOG_MARGINAL, rtol=1e-5)


def test_iwae_bound_with_a_wrong_q_rises_with_k_toward_log_p_x():
  # A shifted, too-wide q: the ELBO gap is KL(q || posterior) = 0.81 + m^2 / (8 sd^2) nats.
  q = pvj.Gaussian(0.5 * POST_MEAN, 2 * POST_SD)
  replications, max_k = 400, 50
  ks = (1, 2, 5, 10, 25, 50)

  @jax.jit
  def mean_bounds(key):
    terms = _log_weight_terms(key, q, (replications, max_k))
    # Each replication's max_k draws form max_k / k independent groups of k; their average is
    # an unbiased, lower-variance estimate of L_k, paired across k through the shared draws.
    bounds = []
    for k in ks:
      groups = [t.reshape(replications, max_k // k, k, len(X)) for t in terms]
      bounds.append(jax.vmap(jax.vmap(objectives.iwae_bound))(*groups).mean(axis=1))
    elbo_1 = objectives.elbo(terms[0], terms[2] - terms[1]).mean(axis=1)
    return jnp.stack(bounds), elbo_1  # [len(ks), replications, len(X)], [replications, len(X)]

  stacked, elbo_1 = mean_bounds(jax.random.key(7))
  bounds = dict(zip(ks, np.asarray(stacked, np.float64)))
  np.testing.assert_allclose(bounds[1], elbo_1, rtol=1e-5)

  def z_score(d):  # mean over replications in units of its standard error
    return d.mean(axis=0) / (d.std(axis=0, ddof=1) / np.sqrt(replications))

  for small, large in zip(ks, ks[1:]):
    assert (z_score(bounds[large] - bounds[small]) > 4).all(), (small, large)
  assert (z_score(bounds[5] - bounds[1]) > 4).all() and (z_score(bounds[50] - bounds[5]) > 4).all()
  # L_50 cannot exceed log p(x) in expectation: above it by at most noise, and close to it.
  assert (z_score(bounds[50] - LOG_MARGINAL) < 3).all()
  gaps = np.array([LOG_MARGINAL - bounds[k].mean(axis=0) for k in ks])
  assert (np.diff(gaps, axis=0) < 0).all()
  assert (gaps[-1] < 0.1 * gaps[0]).all()


_OUT = np.linspace(-3, 3, 24).reshape(2, 3, 4)
_TARGET = np.linspace(0, 1, 24).reshape(2, 3, 4)
JIT_VMAP_CASES = [
    (objectives.bernoulli_log_likelihood, (_OUT, _TARGET), {"event_ndim": 2}),
    (objectives.gaussian_log_likelihood, (_OUT, _TARGET), {"scale": 0.7, "event_ndim": 2}),
    (objectives.mean_squared_error, (_OUT, _TARGET), {"event_ndim": 2}),
    (objectives.kl_warmup, (np.array([0, 3, 7, 12]),), {"warmup_steps": 10}),
    (objectives.free_bits, (_TARGET * 2,), {"bits": 0.8}),
    (objectives.elbo, (_OUT.reshape(2, 12) - 5, _TARGET.reshape(2, 12)), {"beta": 0.3}),
    (objectives.iwae_bound, (10 * _OUT - 20, _OUT, 2 * _TARGET), {}),
]


@pytest.mark.parametrize("fn,args,kwargs", JIT_VMAP_CASES,
                         ids=[case[0].__name__ for case in JIT_VMAP_CASES])
def test_objective_is_unchanged_under_jit_and_vmap(fn, args, kwargs):
  args = tuple(np.asarray(a, np.float32 if a.dtype.kind == "f" else np.int32) for a in args)
  eager = fn(*args, **kwargs)
  np.testing.assert_allclose(jax.jit(lambda *a: fn(*a, **kwargs))(*args), eager, rtol=1e-6)
  # vmap over the leading axis of every argument equals a Python loop over it.
  looped = np.stack([fn(*(a[i] for a in args), **kwargs) for i in range(args[0].shape[0])])
  vmapped = jax.vmap(lambda *a: fn(*a, **kwargs))(*args)
  np.testing.assert_allclose(vmapped, looped, rtol=1e-6)


def test_sum_squared_error_is_the_mean_times_the_event_size():
  rng = np.random.default_rng(0)
  pred, x = rng.random((5, 28, 28, 1)), rng.random((5, 28, 28, 1))
  expected = ((pred - x) ** 2).reshape(5, -1).sum(1)
  np.testing.assert_allclose(objectives.sum_squared_error(pred, x), expected, rtol=1e-6)
  np.testing.assert_allclose(objectives.mean_squared_error(pred, x) * 784, expected, rtol=1e-6)
