r"""t3VAE's univariate heavy-tailed simulation (Kim et al., ICLR 2024, section 5.1) at CPU scale.

Data: ``--dataset=t_mixture``, 0.6 t_2(-2, 1) + 0.4 t_2(2, 1), 200k train and 200k test points
(`pareto_vae_jax.data`). Every model has latent dimension 1, an MLP of (64, 64), decoder scale
0.1, batch 1024, Adam lr 1e-3, as t3VAE's simulation; a fixed number of epochs E instead of its
100 epochs with early stopping (the library has no early stopping), no KL warm-up
(``warmup_epochs=0``: t3VAE has none), no weight decay (t3VAE uses 1e-4). E = 100 (the
default) is t3VAE's epoch cap; on a 2-core CPU shared with other jobs the 21 runs take about 25
minutes (about 0.43 s per epoch and 20 s of start-up and test evaluation per run, measured).
The library's own test IWAE bound uses 8 samples (``iwae_samples=8``) to keep evaluation short;
it is kept in results.json for reference only.

For each trained run it loads the model with `pareto_vae_jax.trained.load`, draws N = 500k
samples (z from the model's prior, for a CVAE under labels in the data's 0.6 / 0.4 proportions;
x = the decoder's mean, as t3VAE generates) and reports, for tail probabilities p = 1e-2, 1e-3,
1e-4, the generated mass beyond the true mixture's quantiles, P_gen(x < q_p) / p (left) and
P_gen(x > q_{1-p}) / p (right); their mean |log10 ratio| (0 = perfect; an empty tail counts as
mass 1/N); the Kolmogorov-Smirnov distance between the samples and the true mixture; and the
test reconstruction error |x - x_hat| (one posterior draw decoded to its mean).

    python experiments/t3vae_synthetic.py --epochs=E --seeds=0,1,2      # the full run
    python experiments/t3vae_synthetic.py --check                        # 1 epoch, seed 0, smoke

Writes ``--out`` (default runs/t3vae_synthetic): one workdir per model and seed, results.json,
summary.md, and the figure ``--figure`` (log density of the generated samples vs the truth).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run_once  # pylint: disable=wrong-import-position
from scipy import optimize
from scipy import stats

# (key, name, flags): the models of the comparison.
MODELS = (
    ("gaussian_vae", "Gaussian VAE", [
        "--latent=gaussian", "--config.likelihood=gaussian", "--config.gaussian_scale=0.1",
        "--noconditional", "--prior=standard"
    ]),
    ("t3vae", "t3VAE (nu=3)", [
        "--latent=multivariate_t", "--objective=gamma_power", "--config.likelihood=gaussian",
        "--config.gaussian_scale=0.1", "--config.latent_df=3", "--noconditional"
    ]),
    ("paretovae", "ParetoVAE (our derivation, nu=3)", [
        "--latent=multivariate_symmetric_pareto", "--objective=gamma_power",
        "--config.likelihood=laplace", "--config.gaussian_scale=0.1", "--config.latent_df=3",
        "--noconditional"
    ]),
    ("t_kl", "Student-t latent, KL (nu=3)", [
        "--latent=multivariate_t", "--config.likelihood=gaussian", "--config.gaussian_scale=0.1",
        "--config.latent_df=3", "--noconditional"
    ]),
    ("sympareto_kl", "symmetric Pareto latent, KL", [
        "--latent=symmetric_pareto", "--config.likelihood=gaussian", "--config.gaussian_scale=0.1",
        "--noconditional"
    ]),
    ("pareto_cvae", "Pareto CVAE (guide, learned prior)", [
        "--latent=pareto", "--conditional", "--config.likelihood=gaussian",
        "--config.gaussian_scale=0.1"
    ]),
    ("pareto_cvae_learned", "Pareto CVAE, learned posterior scale", [
        "--latent=pareto", "--conditional", "--config.likelihood=gaussian",
        "--config.gaussian_scale=0.1", "--config.pareto_posterior_scale=learned"
    ]),
    ("t3vae_code", "t3VAE (nu=3), its code's LeakyReLU and weight decay 1e-4", [
        "--latent=multivariate_t", "--objective=gamma_power", "--config.likelihood=gaussian",
        "--config.gaussian_scale=0.1", "--config.latent_df=3", "--noconditional",
        "--config.activation=leaky_relu", "--config.weight_decay=1e-4"
    ]),
)

# --data: dataset -> (latent dimension, default --out, default --figure).
DATA = {
    "t_mixture": (1, "runs/t3vae_synthetic", "docs/figures/t3vae_synthetic_tails.png"),
    "t_mixture2d": (2, "runs/t3vae_synthetic2d", "docs/figures/t3vae_synthetic2d_tails.png"),
}
RADIAL_REFERENCE_SEED = 99  # the t_mixture2d draws whose |x| quantiles stand in for the truth

TAIL_PROBS = (1e-2, 1e-3, 1e-4)
MIX_WEIGHTS = (0.6, 0.4)
MIX_LOCS = (-2.0, 2.0)
MIX_DF = 2.0
WARMUP_EPOCHS = 0


def common_flags(epochs: int, dataset: str = "t_mixture") -> list[str]:
  return [
      f"--dataset={dataset}", f"--config.latent_dim={DATA[dataset][0]}", "--config.hidden=(64, 64)",
      "--config.batch_size=1024", "--config.learning_rate=1e-3", f"--config.num_epochs={epochs}",
      f"--config.warmup_epochs={WARMUP_EPOCHS}", "--config.eval_batch_size=20000",
      "--config.summary_every_epochs=0", "--config.iwae_samples=8"
  ]


# ------------------------------------------------------------------ the true mixture


def mixture_cdf(x):
  return sum(w * stats.t.cdf(x, MIX_DF, loc=m) for w, m in zip(MIX_WEIGHTS, MIX_LOCS))


def mixture_sf(x):
  return sum(w * stats.t.sf(x, MIX_DF, loc=m) for w, m in zip(MIX_WEIGHTS, MIX_LOCS))


def mixture_pdf(x):
  return sum(w * stats.t.pdf(x, MIX_DF, loc=m) for w, m in zip(MIX_WEIGHTS, MIX_LOCS))


def tail_quantiles() -> dict[float, tuple[float, float]]:
  """p -> (q_p, q_{1-p}) of the true mixture (root finding on the cdf and the survival)."""
  out = {}
  for p in TAIL_PROBS:
    lo = optimize.brentq(lambda x: mixture_cdf(x) - p, -1e4, 0.0, xtol=1e-12, rtol=1e-14)
    hi = optimize.brentq(lambda x: mixture_sf(x) - p, 0.0, 1e4, xtol=1e-12, rtol=1e-14)
    out[p] = (lo, hi)
  return out


# ------------------------------------------------------------------ training


def radial_quantiles() -> dict[float, float]:
  """p -> the (1 - p) quantile of |x| under t_mixture2d, from 4 million reference draws."""
  from pareto_vae_jax import data
  ref = data._t_mixture2d(RADIAL_REFERENCE_SEED, counts=(2_400_000, 1_600_000)).train_x
  radius = np.linalg.norm(ref.astype(np.float64), axis=1)
  return {p: float(np.quantile(radius, 1 - p)) for p in TAIL_PROBS}


def train(workdir: str,
          flags: list[str],
          seed: int,
          epochs: int,
          dataset: str = "t_mixture") -> dict:
  """Trains one run (unless it finished before); returns its status and wall time."""
  return run_once.train_once(workdir, [f"--seed={seed}", *common_flags(epochs, dataset), *flags])


# ------------------------------------------------------------------ metrics


def generate(vae, n: int, seed: int) -> np.ndarray:  # (n, dim)
  """n decoded prior draws; a CVAE's labels in the data's proportions (exact counts, shuffled)."""
  import jax
  labels = None
  if vae.spec.conditional:
    counts = [round(w * n) for w in MIX_WEIGHTS]
    counts[-1] = n - sum(counts[:-1])
    rng = np.random.default_rng(seed + 7919)
    labels = rng.permutation(np.repeat(np.arange(len(counts)), counts)).astype(np.int32)
  x = vae.sample(jax.random.key(seed + 104_729), n, labels=labels)
  return np.asarray(x, np.float64).reshape(n, -1)


def tail_metrics(x: np.ndarray, quantiles) -> dict:
  n = len(x)
  out = {}
  logs = []
  for p, (lo, hi) in quantiles.items():
    for side, mass in (("left", np.sum(x < lo) / n), ("right", np.sum(x > hi) / n)):
      out[f"{side}_{p:g}"] = mass / p
      logs.append(abs(math.log10(max(mass, 1.0 / n) / p)))
  out["mean_abs_log10"] = float(np.mean(logs))
  return out


def radial_metrics(x: np.ndarray, radial) -> dict:
  """Generated mass of |x| beyond the reference's (1 - p) quantiles, as a ratio to p."""
  radius = np.linalg.norm(x, axis=1)
  out, logs = {}, []
  for p, q in radial.items():
    mass = np.sum(radius > q) / len(x)
    out[f"radial_{p:g}"] = mass / p
    logs.append(abs(math.log10(max(mass, 1.0 / len(x)) / p)))
  out["radial_mean_abs_log10"] = float(np.mean(logs))
  return out


def reconstruct(vae, x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
  """One posterior draw of each row decoded to the decoder's mean, (N, dim) float64."""
  import jax
  out = []
  for i in range(0, len(x), 50_000):
    xb, yb = x[i:i + 50_000], y[i:i + 50_000]
    key = jax.random.fold_in(jax.random.key(seed), i)
    out.append(np.asarray(vae.reconstruct(xb, yb if vae.spec.conditional else None, key=key)))
  return np.concatenate(out).reshape(len(x), -1).astype(np.float64)


def evaluate(workdir: str,
             seed: int,
             num_gen: int,
             quantiles,
             test_x: np.ndarray,
             test_y: np.ndarray,
             train_x: np.ndarray,
             train_y: np.ndarray,
             radial=None) -> tuple[dict, np.ndarray]:
  """The run's metrics and its generated samples (N, dim).

  Tail masses and the KS distance pool the coordinates (every coordinate of both datasets has the
  1-D mixture as its marginal). ``agg_*``: the same tail metrics for the aggregate posterior's
  decodings (each training point's one posterior draw decoded to the mean) instead of prior
  draws; where the prior's decodings overshoot the tails and these do not, the prior puts mass
  where the encoder never goes. ``radial`` (2-D): the tails of |x| as well.
  """
  from pareto_vae_jax import trained
  vae = trained.load(workdir)
  x = generate(vae, num_gen, seed)
  finite = np.isfinite(x).all(axis=1)
  pooled = np.where(finite[:, None], x, np.nan).ravel()
  metrics = {"nonfinite_samples": int((~finite).sum())}
  metrics.update(tail_metrics(pooled, quantiles))
  metrics["ks"] = float(stats.kstest(x[finite].ravel(), mixture_cdf).statistic)
  if radial is not None:
    metrics.update(radial_metrics(x[finite], radial))
  agg = reconstruct(vae, train_x, train_y, seed + 1)
  agg_finite = np.isfinite(agg).all(axis=1)
  agg_tails = tail_metrics(np.where(agg_finite[:, None], agg, np.nan).ravel(), quantiles)
  metrics.update({f"agg_{k}": v for k, v in agg_tails.items()})
  if radial is not None:
    metrics.update({f"agg_{k}": v for k, v in radial_metrics(agg[agg_finite], radial).items()})
  recon = reconstruct(vae, test_x, test_y, seed)
  err = np.abs(recon - test_x.astype(np.float64)).ravel()
  metrics["recon_mae"] = float(np.mean(err))
  metrics["recon_median_ae"] = float(np.median(err))
  metrics["recon_rmse"] = float(np.sqrt(np.mean(err**2)))
  with open(os.path.join(workdir, "test_metrics.json")) as f:
    library = json.load(f)
  metrics["library_test"] = {k: library[k] for k in ("elbo", "recon", "kl", "iwae")}
  metrics["step"] = vae.step
  return metrics, x


# ------------------------------------------------------------------ report


def mean_sd(values) -> str:
  values = [v for v in values if v is not None and math.isfinite(v)]
  if not values:
    return "n/a"
  mean = float(np.mean(values))
  sd = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
  fmt = (lambda v: f"{v:.3g}")
  return f"{fmt(mean)} ± {fmt(sd)}"


def write_figure(path: str,
                 samples: dict[str, np.ndarray],
                 seed: int,
                 epochs: int,
                 data_name: str = "t_mixture") -> None:
  import matplotlib
  matplotlib.use("Agg")
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  fig = Figure(figsize=(9, 5.5), layout="constrained")
  FigureCanvasAgg(fig)
  ax = fig.subplots()
  edges = np.linspace(-25, 25, 251)
  centers = 0.5 * (edges[1:] + edges[:-1])
  grid = np.linspace(-25, 25, 2001)
  ax.plot(grid, mixture_pdf(grid), color="black", lw=2.2, label="true mixture density")
  styles = ["-", "--", "-.", ":", "-", "--", "-."]
  for i, (name, x) in enumerate(samples.items()):
    counts, _ = np.histogram(x[np.isfinite(x)], bins=edges)
    density = counts / (len(x) * np.diff(edges))
    density = np.where(counts > 0, density, np.nan)
    ax.step(centers, density, where="mid", ls=styles[i % len(styles)], lw=1.3, label=name)
  ax.set_yscale("log")
  ax.set_ylim(5e-6, 1)
  ax.set_xlim(-25, 25)
  ax.set_xlabel("x")
  ax.set_ylabel("density (log scale)")
  n = len(next(iter(samples.values())))
  what = ("t_mixture 0.6 t2(-2,1) + 0.4 t2(2,1)" if data_name == "t_mixture" else
          "t_mixture2d, both coordinates pooled (marginal 0.6 t2(-2,1) + 0.4 t2(2,1))")
  ax.set_title(f"{what}: {n:,} generated values per model (seed {seed}, {epochs} epochs)",
               fontsize=9)
  ax.legend(loc="upper right", fontsize=8)
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  fig.savefig(path, dpi=130)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--data", default="t_mixture", choices=sorted(DATA))
  parser.add_argument("--out", default="", help="default: by --data (DATA)")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--epochs", type=int, default=100)
  parser.add_argument("--num_gen", type=int, default=500_000)
  parser.add_argument("--models", default="", help="comma-separated keys (default: all)")
  parser.add_argument("--figure", default="", help="default: by --data (DATA)")
  parser.add_argument("--check", action="store_true", help="1 epoch, seed 0, into --out/check")
  args = parser.parse_args()
  dim, default_out, default_figure = DATA[args.data]
  args.out = args.out or default_out
  args.figure = args.figure or default_figure
  if args.check:
    args.epochs, args.seeds, args.out = 1, "0", os.path.join(args.out, "check")
    args.figure = os.path.join(args.out, "tails.png")
  seeds = [int(s) for s in args.seeds.split(",")]
  models = [m for m in MODELS if not args.models or m[0] in args.models.split(",")]
  os.makedirs(args.out, exist_ok=True)

  from pareto_vae_jax import data
  quantiles = tail_quantiles()
  radial = radial_quantiles() if dim > 1 else None
  start = time.time()
  results = {}
  figure_samples = {}
  for key, name, flags in models:
    results[key] = {"name": name, "flags": flags, "seeds": {}}
    for seed in seeds:
      workdir = os.path.join(args.out, key, f"seed{seed}")
      info = train(workdir, flags, seed, args.epochs, args.data)
      entry = {"train": info}
      if info["returncode"] == 0:
        ds = data.load_dataset(args.data, seed=seed)
        t0 = time.time()
        metrics, x = evaluate(workdir, seed, args.num_gen, quantiles, ds.test_x, ds.test_y,
                              ds.train_x, ds.train_y, radial)
        metrics["eval_wall_s"] = time.time() - t0
        entry["metrics"] = metrics
        if seed == seeds[0]:
          figure_samples[name] = x.ravel()
        print(
            f"  {key} seed {seed}: mean|log10| {metrics['mean_abs_log10']:.3f} "
            f"(aggregate posterior {metrics['agg_mean_abs_log10']:.3f})  "
            f"KS {metrics['ks']:.4f}  MAE {metrics['recon_mae']:.4f}",
            flush=True)
      results[key]["seeds"][str(seed)] = entry
  total_wall = time.time() - start

  train_wall = sum(e["train"]["wall_s"] for r in results.values() for e in r["seeds"].values())
  out = {
      "data": args.data,
      "epochs": args.epochs,
      "seeds": seeds,
      "num_gen": args.num_gen,
      "warmup_epochs": WARMUP_EPOCHS,
      "common_flags": common_flags(args.epochs, args.data),
      "tail_quantiles": {
          f"{p:g}": q for p, q in quantiles.items()
      },
      "radial_quantiles": None if radial is None else {
          f"{p:g}": q for p, q in radial.items()
      },
      "train_wall_s_total": train_wall,
      "script_wall_s": total_wall,
      "models": results,
  }
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump(out, f, indent=1)
  if figure_samples:
    write_figure(args.figure, figure_samples, seeds[0], args.epochs, args.data)

  # summary.md
  tail_keys = [f"{side}_{p:g}" for p in TAIL_PROBS for side in ("left", "right")]
  summary_keys = ["mean_abs_log10", "agg_mean_abs_log10"]
  summary_heads = ["mean abs log10 tail ratio", "same, aggregate posterior's decodings"]
  if radial is not None:
    summary_keys += ["radial_mean_abs_log10", "agg_radial_mean_abs_log10"]
    summary_heads += ["radial (abs x) mean abs log10", "radial, aggregate posterior"]
  summary_keys += ["ks", "recon_mae", "recon_median_ae", "recon_rmse"]
  summary_heads += ["KS distance", "test recon MAE", "test recon median AE", "test recon RMSE"]
  data_line = ("Data `t_mixture`: 0.6 t_2(-2, 1) + 0.4 t_2(2, 1), 200k train / 200k test."
               if dim == 1 else "Data `t_mixture2d`: 0.6 t_2((-2, -2), S+) + 0.4 t_2((2, 2), S-), "
               "unit variances, correlation +-0.5, 200k train / 200k test; both coordinates have "
               "the 1-D mixture as marginal, so tails and KS pool the two coordinates; radial "
               "quantiles of abs(x) from 4M reference draws: " +
               ", ".join(f"p={p:g}: {q:.3f}" for p, q in radial.items()) + ".")
  lines = [
      f"# t3VAE's heavy-tailed {dim}-D simulation: {args.epochs} epochs, seeds {seeds}", "",
      data_line + " Common flags: `" + " ".join(common_flags(args.epochs, args.data)) + "`. "
      f"{args.num_gen:,} generated samples per run (prior draw, decoder mean). "
      "Mean ± sample standard deviation over seeds.", "", "True mixture quantiles: " +
      ", ".join(f"p={p:g}: q_p={lo:.3f}, q_(1-p)={hi:.3f}" for p, (lo, hi) in quantiles.items()),
      "", "## Summary", "",
      "| model | " + " | ".join(summary_heads) + " | training wall (median) |",
      "|---|" + "---|" * len(summary_heads) + "---|"
  ]
  failures = []
  for key, r in results.items():
    ok = [e["metrics"] for e in r["seeds"].values() if "metrics" in e]
    walls = sorted(e["train"]["wall_s"] for e in r["seeds"].values())
    for seed, e in r["seeds"].items():
      if "metrics" not in e:
        last = (e["train"].get("error", "").strip().splitlines() or [""])[-1]
        failures.append(f"- {r['name']} seed {seed}: training failed (rc "
                        f"{e['train']['returncode']}): {last}")
      elif e["metrics"]["nonfinite_samples"]:
        failures.append(f"- {r['name']} seed {seed}: {e['metrics']['nonfinite_samples']} "
                        "non-finite generated samples (dropped)")
    note = "" if len(ok) == len(r["seeds"]) else f" ({len(ok)}/{len(r['seeds'])} seeds)"
    lines.append(f"| {r['name']}{note} | " +
                 " | ".join(mean_sd([m[k] for m in ok]) for k in summary_keys) +
                 f" | {walls[len(walls) // 2]:.0f} s |")
  lines += [
      "", "## Tail mass ratios P_gen(tail) / p (1 = the true mass)", "",
      "| model | " + " | ".join(k.replace("_", " p=") for k in tail_keys) + " |",
      "|---|" + "---|" * len(tail_keys)
  ]
  for key, r in results.items():
    ok = [e["metrics"] for e in r["seeds"].values() if "metrics" in e]
    lines.append(f"| {r['name']} | " + " | ".join(mean_sd([m[k] for m in ok]) for k in tail_keys) +
                 " |")
  lines += [
      "", "## Per seed", "", "| model | seed | mean abs log10 | KS | recon MAE | recon RMSE | " +
      " | ".join(k.replace("_", " p=") for k in tail_keys) + " | library test ELBO | train wall |",
      "|---|---|---|---|---|---|" + "---|" * len(tail_keys) + "---|---|"
  ]
  for key, r in results.items():
    for seed, e in r["seeds"].items():
      if "metrics" not in e:
        lines.append(f"| {r['name']} | {seed} | failed (rc {e['train']['returncode']}) |")
        continue
      m = e["metrics"]
      lines.append(f"| {r['name']} | {seed} | {m['mean_abs_log10']:.3f} | {m['ks']:.4f} | "
                   f"{m['recon_mae']:.4f} | {m['recon_rmse']:.3g} | " +
                   " | ".join(f"{m[k]:.3g}" for k in tail_keys) +
                   f" | {m['library_test']['elbo']:.3g} | {e['train']['wall_s']:.0f} s |")
  lines += [
      "", f"Training wall time, sum over the runs (each run's wall.json, written when it "
      f"trained): {train_wall:.0f} s; this invocation of the script (runs already trained are "
      f"only evaluated): {total_wall:.0f} s.", "", "## Failures and warnings", "",
      *(failures or ["none"])
  ]
  summary = "\n".join(lines) + "\n"
  with open(os.path.join(args.out, "summary.md"), "w") as f:
    f.write(summary)
  print(summary)


if __name__ == "__main__":
  main()
