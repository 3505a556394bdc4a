"""Fuzz: every family's pure functions over its documented ranges, values and gradients never NaN.

Factorized families (``event_ndim`` 0): >= 10^4 parameter sets each, drawn log-uniformly
(uniformly for a real parameter) with a fixed numpy seed over the family's documented range,
``Cases.ranges`` in tests/family_cases.py (the range tests/test_extremes.py holds every family
to; the README states the Pareto's and the Inverse Gaussian's), plus every pair of corners of
that box and the points of reported defects (REPORTED). One draw per set; every function
below, value and ``jax.grad`` with respect to every parameter, under one
``jax.jit(jax.vmap(...))`` per family (one compilation, plus one float64 reference for the
KLs): a test per family, whose failure lists every function that failed, each with the first
offending parameter set.

* ``rsample`` and, for positive families, ``rsample_log``;
* ``log_prob`` at the set's own draw (and ``log_prob_log`` at its ``log z``), the draw held fixed;
* ``mc_kl``: the trainer's single-draw estimate ``log q(z) - log p(z)`` at a pathwise draw of
  ``q`` (in log space for positive families), ``p`` a second random member of the family, with
  gradients through the draw to both;
* ``mean_log`` (positive families);
* the closed-form ``kl`` to the family's standard prior and between two random members, where
  the registry has one.

``mean`` and ``variance`` are left out: they are ``inf`` or ``nan`` by definition over parts
of the ranges (a Student-t's variance for df <= 1), which test_log_prob.py checks against scipy.

A value may be +-inf only where its true value overflows float32: a draw ``z`` where ``log z``
(``rsample_log``, same key) exceeds log(float32 max); the density at a draw that under- or
overflowed to ``z`` = 0 or inf; the single-draw KL where ``log p(z)`` is -inf (the draw is
outside ``p``'s support, as for a Pareto with ``x_q < x_p``); a closed-form KL where its float64
evaluation exceeds float32's range. A derivative may be +-inf where its function's value is,
where its float64 value exceeds float32's range (closed-form KLs: exactly), or, for the draws
and the single-draw KL, where its true value (from log space, or by the chain rule in float64
at the same draw) exceeds float32 max * 2^-24 (``NEAR_OVERFLOW``): reverse mode multiplies
the cotangent in first, so an intermediate product can overflow before a last factor below 1
(a draw's E, down to 2^-24) brings it back. Nothing is ever NaN.

Joint families (``event_ndim`` 1: the full-covariance Gaussian, planar flows, IAF), at D = 3
with the small structure of tests/test_registry.py: 10^4 rows of raw encoder outputs
uniform in [-10, 10] (and the all -10, 0 and 10 rows), standard-normal noise; ``transform``
(the draw ``z`` and ``log q(z)``) with their Jacobians with respect to the raw outputs (and the
IAF's shared MADE weights), the registered ``log_prob`` at the draw, and the registered closed
form KLs (to ``N(0, I)`` as a diagonal Gaussian and between two random members), in one jit
per family. All finite. The mixture prior (``prior_only``, no ``--latent`` choice) is left
out: its components are the factorized families above.
"""

from __future__ import annotations

import functools
import itertools
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj
from family_cases import CASES
from pareto_vae_jax.distributions import registry

N_RANDOM = 10_000
SEED = 20_261_201
KEY = jax.random.key(SEED)
F32_MAX = float(np.finfo(np.float32).max)
LOG_F32_MAX = float(np.log(F32_MAX))
# Slack for float32 rounding when deciding whether a true value overflows.
LOG_SLACK = 1e-3
# Reverse mode forms a derivative as a product, the cotangent first: where the true derivative
# is near float32's largest value, an intermediate product overflows before a last factor below
# 1 (a draw's E, down to 2^-24 in float32, or a slope) brings it back in range. A derivative
# may therefore be +-inf where its true value is above float32 max * 2^-24 (2e31).
NEAR_OVERFLOW = F32_MAX * 2.0**-24

# Parameter sets (q, p) at which defects were reported, each repeated with REPEATS keys.
REPORTED = {
    # jax.grad(kl_weibull, (0, 1, 2, 3)) gave (nan, inf, nan, -inf) at a KL of 1.7e38.
    "weibull": (((57.14, 5.5414), (18.038, 0.041836)),),
    # The gradient of rsample in alpha was nan where the draw overflows (Pareto's is -inf).
    "lomax": (((0.0111, 0.4), (1.0, 1.0)),),
}
REPEATS = 16

JOINT_D = 3
JOINT_OPTIONS = {"flow_layers": 2, "iaf_steps": 2, "iaf_hidden": 8, "iaf_context": 4}
JOINT_RAW = 10.0

KL_FUNCTIONS = ("kl_prior", "kl_pair")


def _functions(name: str) -> tuple[str, ...]:
  """The functions checked for a factorized family, in the order of the module docstring."""
  info, positive = pvj.family_info(name), CASES[name].positive
  functions = ["rsample", "rsample_log", "log_prob", "log_prob_log", "mc_kl", "mean_log"]
  if not positive:
    functions = [f for f in functions if f not in ("rsample_log", "log_prob_log", "mean_log")]
  if registry.has_closed_form_kl(info.cls, info.cls):
    functions += KL_FUNCTIONS
  return tuple(functions)


@functools.lru_cache(maxsize=None)
def _parameter_sets(name: str) -> tuple[np.ndarray, np.ndarray]:
  """(q, p): float32 parameter sets [N, P] of the family, in the order of its param_names."""
  info, cases = pvj.family_info(name), CASES[name]
  ranges = [cases.ranges[n] for n in info.param_names]
  rng = np.random.default_rng(SEED + zlib.crc32(name.encode()))

  def draw(n):
    return np.stack([
        np.exp(rng.uniform(np.log(lo), np.log(hi), n)) if log else rng.uniform(lo, hi, n)
        for lo, hi, log in ranges
    ], -1)

  corners = np.array(list(itertools.product(*((lo, hi) for lo, hi, _ in ranges))))
  reported = REPORTED.get(name, ())
  q = [draw(N_RANDOM), np.repeat(corners, len(corners), 0)]
  p = [draw(N_RANDOM), np.tile(corners, (len(corners), 1))]
  for q_point, p_point in reported:
    q.append(np.tile(q_point, (REPEATS, 1)))
    p.append(np.tile(p_point, (REPEATS, 1)))
  return np.concatenate(q).astype(np.float32), np.concatenate(p).astype(np.float32)


def _keys(n: int) -> jax.Array:
  return jax.random.split(KEY, n)


def _columns(table) -> tuple[jax.Array, ...]:
  return tuple(jnp.asarray(table[:, i]) for i in range(table.shape[1]))


def _describe(name: str, q: np.ndarray, p: np.ndarray, i: int, with_p: bool) -> str:
  names = pvj.family_info(name).param_names
  text = "q = " + ", ".join(f"{n}={float(v)!r}" for n, v in zip(names, q[i]))
  if with_p:
    text += "; p = " + ", ".join(f"{n}={float(v)!r}" for n, v in zip(names, p[i]))
  return f"parameter set #{i} ({text})"


def _first_bad(label: str, values, allowed_inf, describe, rule: str) -> str | None:
  """None if no value is NaN and every +-inf is ``allowed_inf``; else a message naming the first."""
  values = np.asarray(values)
  allowed_inf = np.broadcast_to(np.asarray(allowed_inf, bool), values.shape)
  bad = np.isnan(values) | (np.isinf(values) & ~allowed_inf)
  if not bad.any():
    return None
  i = int(np.flatnonzero(bad)[0])
  kind = "NaN" if np.isnan(values[i]) else "infinite"
  return (f"{label} is {values[i]} ({kind}) at {describe(i)}; {int(bad.sum())} of {values.size} "
          f"values are bad. Values and gradients must never be NaN, and may be +-inf only where "
          f"the true value overflows float32 ({rule}).")


def _factorized_row(name: str):
  """Every function of the family at one parameter set, and its float64 reference.

  ``row(q, p, key)`` returns ({function: (value, grads)}, log p(z)) at the set's draw z;
  ``reference(q, p, s)`` the float64 closed-form KLs and the partial derivatives of the
  single-draw KL at the float32 draw s.

  grads is a tuple over q's parameters, then p's for the single-draw and pairwise KLs.
  """
  info, positive = pvj.family_info(name), CASES[name].positive
  functions = _functions(name)
  # The trainer draws and scores positive families in log space.
  sample, score = ((pvj.rsample_log, pvj.log_prob_log) if positive else (pvj.rsample, pvj.log_prob))
  dist = lambda params: info.cls(*params)
  prior = lambda: info.standard_prior((), **info.latent_fixed)

  def row(q, p, key):
    out = {"rsample": jax.value_and_grad(lambda q: pvj.rsample(key, dist(q)))(q)}
    if positive:
      out["rsample_log"] = jax.value_and_grad(lambda q: pvj.rsample_log(key, dist(q)))(q)
    z = jax.lax.stop_gradient(out["rsample"][0])
    out["log_prob"] = jax.value_and_grad(lambda q: pvj.log_prob(dist(q), z))(q)
    if positive:
      log_z = jax.lax.stop_gradient(out["rsample_log"][0])
      out["log_prob_log"] = jax.value_and_grad(lambda q: pvj.log_prob_log(dist(q), log_z))(q)

    def estimate(q, p):  # gradients through the pathwise draw, to q and p
      s = sample(key, dist(q))
      return score(dist(q), s) - score(dist(p), s)

    value, (g_q, g_p) = jax.value_and_grad(estimate, (0, 1))(q, p)
    out["mc_kl"] = (value, g_q + g_p)
    if positive:
      out["mean_log"] = jax.value_and_grad(lambda q: pvj.mean_log(dist(q)))(q)
    if "kl_prior" in functions:
      out["kl_prior"] = jax.value_and_grad(lambda q: pvj.kl(dist(q), prior()))(q)
      value, (g_q, g_p) = jax.value_and_grad(lambda q, p: pvj.kl(dist(q), dist(p)), (0, 1))(q, p)
      out["kl_pair"] = (value, g_q + g_p)
    s = jax.lax.stop_gradient(out["rsample_log" if positive else "rsample"][0])
    return out, score(dist(p), s)  # log p(z): -inf where the draw is outside p's support

  def reference(q, p, s):
    # float64: the closed-form KLs, and the partial derivatives of the single-draw KL at the
    # float32 draw s (the chain rule adds d s / d theta from the float32 pass).
    estimate = lambda q, p, s: score(dist(q), s) - score(dist(p), s)
    out = {"mc_kl": jax.grad(estimate, (0, 1, 2))(q, p, s)}
    if "kl_prior" in functions:
      out["kl_prior"] = jax.value_and_grad(lambda q: pvj.kl(dist(q), prior()))(q)
      value, (g_q, g_p) = jax.value_and_grad(lambda q, p: pvj.kl(dist(q), dist(p)), (0, 1))(q, p)
      out["kl_pair"] = (value, g_q + g_p)
    return out

  return row, reference


@functools.lru_cache(maxsize=None)
def _factorized_results(name: str):
  """One jit of every function over every parameter set, and one float64 reference."""
  positive = CASES[name].positive
  q, p = _parameter_sets(name)
  row, reference = _factorized_row(name)
  out, log_p = jax.jit(jax.vmap(row))(_columns(q), _columns(p), _keys(len(q)))
  out, log_p = jax.tree.map(np.asarray, (out, log_p))
  s = out["rsample_log" if positive else "rsample"][0]
  with jax.enable_x64(True):
    ref = jax.jit(jax.vmap(reference))(_columns(q.astype(np.float64)),
                                       _columns(p.astype(np.float64)), jnp.asarray(s, jnp.float64))
    ref = jax.tree.map(lambda x: np.asarray(x, np.float64), ref)
  return out, log_p, ref


@pytest.mark.parametrize("name", pvj.family_names())
def test_factorized_family_is_never_nan_over_its_documented_range(name):
  info, positive = pvj.family_info(name), CASES[name].positive
  q, p = _parameter_sets(name)
  out, log_p, ref = _factorized_results(name)
  params = info.param_names
  both = [*params, *(f"{n}_p" for n in params)]
  failures = []

  def check(function, what, values, allowed_inf, rule):
    describe = functools.partial(_describe, name, q, p, with_p=function in ("mc_kl", "kl_pair"))
    failures.append(_first_bad(f"{name}: {function}: {what}", values, allowed_inf, describe, rule))

  # Draws: z is inf only where log z (rsample_log, same key) is beyond log(float32 max); its
  # derivative z d log z / d theta, from log space, only near that (NEAR_OVERFLOW).
  z, dz = out["rsample"]
  if positive:
    log_z, dlog_z = out["rsample_log"]
    overflow = log_z > LOG_F32_MAX - LOG_SLACK
    rule = "z may be inf only where rsample_log's log z > log(float32 max)"
  else:
    overflow = np.zeros(len(q), bool)
    rule = "a real family's draws never overflow over its documented range"
  check("rsample", "the draw", z, overflow, rule)
  for i, n in enumerate(params):
    near = overflow
    if positive:
      with np.errstate(divide="ignore"):
        near = overflow | (log_z + np.log(np.abs(dlog_z[i])) > np.log(NEAR_OVERFLOW))
    check(
        "rsample", f"d z / d {n}", dz[i], near,
        "where z overflows, or where z d log z / d theta, the true value, exceeds float32 max "
        "* 2^-24 (an intermediate product of the chain rule can overflow there)")
  finite = "finite everywhere"
  if positive:
    check("rsample_log", "log z", log_z, False, finite)
    for i, n in enumerate(params):
      check("rsample_log", f"d log z / d {n}", dlog_z[i], False, finite)

  # Densities at the set's own draw, held fixed. A positive family's draw that under- or
  # overflowed float32 (z = 0 or inf) lies on the edge of its support in float32.
  value, grads = out["log_prob"]
  edge = ((z == 0) | np.isinf(z)) if positive else np.zeros(len(q), bool)
  rule = "only at a draw z = 0 or inf that under- or overflowed float32"
  check("log_prob", "log q(z)", value, edge, rule)
  for i, n in enumerate(params):
    check("log_prob", f"d log q(z) / d {n}", grads[i], edge | np.isinf(value), rule)
  for function in ("log_prob_log", "mean_log"):
    if function in out:
      value, grads = out[function]
      check(function, "the value", value, False, finite)
      for i, n in enumerate(params):
        check(function, f"d / d {n}", grads[i], False, finite)

  # The single-draw KL, with gradients through the draw; its true derivatives by the chain
  # rule in float64 at the same draw: partial derivatives plus d score / d s * d s / d theta.
  value, grads = out["mc_kl"]
  d_q, d_p, d_s = ref["mc_kl"]
  ds = (dlog_z if positive else dz)
  with np.errstate(invalid="ignore", over="ignore"):
    true = [g + d_s * np.asarray(d, np.float64) for g, d in zip(d_q, ds)] + list(d_p)
  outside = np.isneginf(log_p)
  rule = ("only where log p(z) = -inf (the draw of q is outside p's support, or p's log-density "
          "there is below -float32 max); a derivative also where its true value exceeds float32 "
          "max * 2^-24 (an intermediate product of the chain rule can overflow there)")
  check("mc_kl", "log q(z) - log p(z)", value, outside, rule)
  for n, g, t in zip(both, grads, true):
    check("mc_kl", f"d / d {n}", g, outside | (np.abs(t) > NEAR_OVERFLOW), rule)

  # Closed-form KLs: +-inf exactly where the float64 evaluation is beyond float32's range.
  rule = "only where the float64 evaluation exceeds float32's range"
  for function in KL_FUNCTIONS:
    if function in out:
      (value, grads), (value64, grads64) = out[function], ref[function]
      check(function, "the KL", value, value64 >= F32_MAX * (1 - 1e-3), rule)
      for n, g, g64 in zip(params if function == "kl_prior" else both, grads, grads64):
        check(function, f"d KL / d {n}", g, np.abs(g64) >= F32_MAX * (1 - 1e-2), rule)

  failures = [f for f in failures if f]
  assert not failures, "\n".join(failures)


# Joint families.


def _joint_applies(name: str, function: str) -> bool:
  info = pvj.joint_info(name)
  if function == "log_prob":
    return info.log_prob is not None
  if function == "kl_standard":
    return registry.has_closed_form_kl(info.cls, pvj.Gaussian)
  if function == "kl_pair":
    return registry.has_closed_form_kl(info.cls, info.cls)
  return True


def _worst(values, n: int) -> np.ndarray:
  """Per row of ``values`` [n, ...]: NaN if any entry is, else inf if any is, else 0."""
  v = np.asarray(values).reshape(n, -1)
  return np.where(np.isnan(v).any(-1), np.nan, np.where(np.isinf(v).any(-1), np.inf, 0.0))


@functools.lru_cache(maxsize=None)
def _joint_rows(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(raw_q, raw_p, eps): [N, num_raw], [N, num_raw], [N, D] float32."""
  info = pvj.joint_info(name)
  n_raw = info.num_raw(JOINT_D, JOINT_OPTIONS)
  rng = np.random.default_rng(SEED + zlib.crc32(name.encode()))
  fixed = np.repeat([-JOINT_RAW, 0.0, JOINT_RAW], n_raw).reshape(3, n_raw)
  raw_q = np.concatenate([rng.uniform(-JOINT_RAW, JOINT_RAW, (N_RANDOM, n_raw)), fixed])
  raw_p = np.concatenate([rng.uniform(-JOINT_RAW, JOINT_RAW, (N_RANDOM, n_raw)), fixed[::-1]])
  eps = rng.standard_normal((len(raw_q), JOINT_D))
  return raw_q.astype(np.float32), raw_p.astype(np.float32), eps.astype(np.float32)


@pytest.mark.parametrize("name", pvj.joint_family_names())
def test_joint_family_is_never_nan_for_raw_outputs_in_a_reasonable_range(name):
  info = pvj.joint_info(name)
  raw_q, raw_p, eps = _joint_rows(name)
  shared = info.init_shared(jax.random.key(1), JOINT_D, JOINT_OPTIONS) if info.init_shared else None
  dist = lambda raw, shared: info.from_flat(raw, JOINT_D, JOINT_OPTIONS, shared)
  prior = pvj.Gaussian(jnp.zeros(JOINT_D), jnp.ones(JOINT_D))

  def transform(raw, shared, e):
    z, log_q = info.transform(dist(raw, shared), e)
    return jnp.concatenate([z, log_q[None]])

  def row(raw_q, raw_p, e):
    # Derivatives with respect to the raw outputs (and the shared MADE weights of an IAF).
    zq = transform(raw_q, shared, e)
    out = {"transform (z, log q)": (zq, jax.jacrev(transform, (0, 1))(raw_q, shared, e))}
    if _joint_applies(name, "log_prob"):
      fn = lambda raw, shared: info.log_prob(dist(raw, shared), jax.lax.stop_gradient(zq[:-1]))
      out["log_prob at the draw"] = jax.value_and_grad(fn, (0, 1))(raw_q, shared)
    if _joint_applies(name, "kl_standard"):
      fn = lambda raw: pvj.kl(dist(raw, shared), prior)
      out["kl to N(0, I)"] = jax.value_and_grad(fn)(raw_q)
    if _joint_applies(name, "kl_pair"):
      fn = lambda raw_q, raw_p: pvj.kl(dist(raw_q, shared), dist(raw_p, shared))
      out["kl between two members"] = jax.value_and_grad(fn, (0, 1))(raw_q, raw_p)
    return out

  out = jax.jit(jax.vmap(row))(jnp.asarray(raw_q), jnp.asarray(raw_p), jnp.asarray(eps))
  describe = lambda i: (f"raw output row #{i} (raw_q = {raw_q[i].tolist()}, raw_p = "
                        f"{raw_p[i].tolist()}, eps = {eps[i].tolist()})")
  rule = "every value is finite for raw outputs in [-10, 10]"
  failures = []
  for function, (value, derivatives) in out.items():
    failures.append(
        _first_bad(f"{name}: {function} (its worst entry per row)", _worst(value, len(raw_q)),
                   False, describe, rule))
    for path, leaf in jax.tree_util.tree_leaves_with_path(derivatives):
      failures.append(
          _first_bad(
              f"{name}: {function}: derivative w.r.t. {jax.tree_util.keystr(path)} (its worst "
              "entry per row)", _worst(leaf, len(raw_q)), False, describe, rule))
  failures = [f for f in failures if f]
  assert not failures, "\n".join(failures)
