r"""The Pareto guide's claims, measured on runs trained on data with known factors.

    python -m pareto_vae_jax.claims --workdir=runs/repro/claims/pareto --workdir=... --out=claims.md

For a run on ``synthetic_pareto`` (4 independent Pareto factors, tail indices 1.5, 2, 3, 5):

- **Tail recovery.** One posterior draw per test example gives a sample of the aggregate
  posterior of each latent dimension. Its tail index is estimated with the Hill estimator (the
  upper tail of z for a positive family, of |z - median| for a real one). Each true factor is
  matched to the latent dimension sharing the most mutual information with it, and the matched
  dimension's index is compared with the factor's.
- **Disentanglement.** The Mutual Information Gap (Chen et al., 2018) between the posterior
  locations (E[z | x], or E[log z | x]) and the true factors, with quantile binning.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from pareto_vae_jax import distributions as D
from pareto_vae_jax._xla_workaround import jit
from pareto_vae_jax import evaluate, metrics, vae


def aggregate_draws(run: evaluate.Run, *, seed: int = 0, batch_size: int = 1000) -> np.ndarray:
  """One posterior draw per test example, in the latent's own space (z, not log z): [N, D]."""

  @jit
  def draw(params, x, y, index):
    q = vae.encode(run.spec, params, x, y)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(jax.random.key(seed), index)
    r, in_log = vae.draw(keys, q)
    return r, in_log

  out = []
  x, y = run.ds.test_x, run.ds.test_y
  for start in range(0, len(x), batch_size):
    sl = slice(start, start + batch_size)
    r, in_log = draw(run.params, jnp.asarray(x[sl]), jnp.asarray(y[sl]),
                     jnp.arange(start, start + len(x[sl])))
    # Positive families: the tail of z itself, computed from log z in float64 (no overflow).
    out.append(np.exp(np.asarray(r, np.float64)) if in_log else np.asarray(r, np.float64))
  return np.concatenate(out)


def tail_indices(draws: np.ndarray, positive: bool) -> tuple[np.ndarray, np.ndarray]:
  """Hill estimates (and standard errors) per column, top 5% of each sample."""
  estimate = metrics.hill_tail_index if positive else metrics.two_sided_tail_index
  pairs = [estimate(draws[:, d][np.isfinite(draws[:, d])]) for d in range(draws.shape[1])]
  return np.array([a for a, _ in pairs]), np.array([s for _, s in pairs])


def measure(run: evaluate.Run, *, seed: int = 0) -> dict[str, Any]:
  """Tail recovery and MIG of one run on a dataset with known factors."""
  ds = run.ds
  if ds.factors_test is None:
    raise ValueError(f"'{ds.name}' keeps no generating factors; the claims need a dataset that "
                     "does, e.g. --dataset=synthetic_pareto (configs/pareto_claims.py).")
  positive = D.family_info(run.config.latent).mean_log is not None
  factors = np.asarray(ds.factors_test, np.float64)
  true_alpha = np.asarray(ds.factor_tail_index, np.float64)
  codes = evaluate.encode_test_set(run)["codes"]
  draws = aggregate_draws(run, seed=seed)
  alpha_hat, alpha_se = tail_indices(draws, positive)
  # The posterior locations too, in the latent's own space (exp E[log z | x] for a positive
  # family: the geometric mean of its posterior).
  with np.errstate(over="ignore"):  # exp of a huge log-code is inf; tail_indices drops it
    natural = np.exp(codes.astype(np.float64)) if positive else codes
  code_alpha, _ = tail_indices(natural, positive)
  factor_alpha, factor_se = tail_indices(factors, True)  # the estimator on the truth itself
  mi = metrics.mutual_information(codes, factors)
  match = metrics.factor_assignment(mi)
  mig, per_factor = metrics.mig(codes, factors)
  # Bootstrap over test examples: how much of a MIG difference between runs is noise.
  rng = np.random.default_rng(seed)
  boot = [
      metrics.mig(codes[i], factors[i])[0]
      for i in (rng.integers(0, len(codes), len(codes)) for _ in range(20))
  ]
  log_ratio = np.log(alpha_hat[match] / true_alpha)
  return {
      "run": run.workdir,
      "latent": run.config.latent,
      "prior": run.spec.prior,
      "true_alpha": true_alpha.tolist(),
      "factor_alpha_hill": factor_alpha.tolist(),
      "factor_alpha_se": factor_se.tolist(),
      "latent_alpha_hill": alpha_hat.tolist(),
      "latent_alpha_se": alpha_se.tolist(),
      "matched_dim": match.tolist(),
      "matched_alpha": alpha_hat[match].tolist(),
      "matched_code_alpha": code_alpha[match].tolist(),
      "mean_abs_log_ratio": float(np.mean(np.abs(log_ratio))),
      "spearman_matched_vs_true": float(_spearman(alpha_hat[match], true_alpha)),
      "mig": float(mig),
      "mig_bootstrap_se": float(np.std(boot, ddof=1)),
      "mig_per_factor": per_factor.tolist(),
      "test_elbo": _test_elbo(run.workdir),
  }


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
  ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
  return float(np.corrcoef(ra, rb)[0, 1])


def _test_elbo(workdir: str) -> float | None:
  path = os.path.join(workdir, "test_metrics.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)["elbo"]


def markdown(rows: list[dict[str, Any]]) -> str:
  lines = [
      "| run | latent | prior | Hill alpha of matched dims, posterior draws (true 1.5, 2, "
      "3, 5) | same, posterior locations | mean abs log ratio (draws) | Spearman (draws) | "
      "MIG | test ELBO |", "|---|---|---|---|---|---|---|---|---|"
  ]
  for r in rows:
    alphas = ", ".join(f"{a:.2f}" for a in r["matched_alpha"])
    codes = ", ".join(f"{a:.2f}" for a in r["matched_code_alpha"])
    elbo = "" if r["test_elbo"] is None else f"{r['test_elbo']:.2f}"
    lines.append(f"| {os.path.basename(r['run'])} | {r['latent']} | {r['prior']} | {alphas} | "
                 f"{codes} | "
                 f"{r['mean_abs_log_ratio']:.2f} | {r['spearman_matched_vs_true']:.2f} | "
                 f"{r['mig']:.3f} ± {r['mig_bootstrap_se']:.3f} | {elbo} |")
  if rows:
    truth = ", ".join(f"{a:.2f}" for a in rows[0]["factor_alpha_hill"])
    lines += ["", f"The same Hill estimator (top 5%) on the true factors themselves: {truth}."]
  return "\n".join(lines) + "\n"


def main(argv):
  f = flags.FLAGS
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if not f.workdir:
    raise app.UsageError("Give --workdir=<run directory> (repeatable).")
  rows = [measure(evaluate.load_run(w)) for w in f.workdir]
  text = markdown(rows)
  print(text)
  if f.out:
    with open(f.out, "w") as out:
      out.write(text)
    with open(os.path.splitext(f.out)[0] + ".json", "w") as out:
      json.dump(rows, out, indent=2)


if __name__ == "__main__":
  # Defined only when run as the program, so importing this module claims no flag names.
  flags.DEFINE_multi_string("workdir", [], "Runs on a dataset with known factors.")
  flags.DEFINE_string("out", None, "Markdown table path (a .json is written beside it).")
  app.run(main)
