r"""ParetoVAE's heavy-tailed data reconstruction experiment (Cho, Seong & Won, ICLR 2026) at CPU
scale, on this library's ``--dataset=synthetic_pareto``.

Data (`pareto_vae_jax.data._synthetic_pareto`): 16-D, x = g(W (s - 1)) + 0.1 eps with 4
independent Pareto factors s_k of tail indices 1.5, 2, 3, 5, a fixed (16, 4) mixing matrix W and
g(h) = h + 0.5 tanh(h); 10k train / 2k test points, 4 balanced classes (the most extreme factor).
The data seed is the run's seed (the library loads ``synthetic_pareto`` with ``config.seed``).

Models (the flags given to ``python -m pareto_vae_jax.main``, `MODELS`): a Gaussian VAE; t3VAE
(multivariate t latent, gamma-power objective, Gaussian decoder); ParetoVAE (multivariate
symmetric Pareto latent, gamma-power objective, with the symPareto decoder (scored as Laplace) and
with the t decoder (scored as Gaussian), both the library's derivation); a
KL-trained t latent with a Student-t decoder; a KL-trained symmetric Pareto latent with a
symmetric Pareto decoder; the guide's Pareto CVAE (learned conditional Pareto prior, the
library's default for a conditional Pareto run) with a shared and a learned posterior scale.
No combination was refused by the library's checks (`pareto_vae_jax.checks`): the flags are the
ones asked for, unchanged (``--check`` trained all eight). latent_df = decoder_df = 5 throughout.

Common flags (`common_flags`) and why:
  * latent dimension 4: the data has 4 factors, so 4 latent dimensions can explain everything but
    the noise; MLP (128, 128) (the data is 16-D, bigger than t3VAE's 1-D simulation's (64, 64));
    batch 128 and Adam lr 1e-3 (the library's defaults; 78 steps per epoch on 10k points, the
    last partial batch dropped).
  * ``gaussian_scale`` S = 0.1 (``--scale``): the decoder's scale (the Gaussian's std, the
    Laplace's, Student-t's and symmetric Pareto's scale) set to the data's noise std 0.1, the
    scale of a decoder that models the 4 factors exactly (and t3VAE's simulation's 0.1).
  * E = 100 epochs (``--epochs``; 7,800 steps), no KL warm-up (``warmup_epochs=0``, as t3VAE's
    simulation), no TensorBoard summaries; the library's own test IWAE bound with 8 samples
    (``iwae_samples=8``) and the whole 2k test set in one evaluation batch, kept in results.json
    for reference only.

Metrics of each trained run (loaded with `pareto_vae_jax.trained.load`):
  * Reconstruction of the 2k test points (one posterior draw decoded to the decoder's mean; a
    CVAE's encoder and decoder see the true label): mean and median absolute error and RMSE over
    all coordinates, and the same over the extreme test points, the 5% and 1% (100 and 20 points)
    with the largest ||x||_2 (`reconstruction_metrics`); also the median over points of the
    relative error ||x - x_hat|| / ||x||.
  * Generation tails: N = 200k samples (``--num_gen``) from the model (a prior draw decoded to the
    decoder's mean; a CVAE under labels 0..3 in exactly equal counts, shuffled) against 1M
    reference points from the true generator (seed 10,000 + the run's seed, the same process as
    the data). For each of the 16 coordinates, the generated mass beyond the reference's lower
    p and upper (1 - p) quantiles, and for ||x||_2 beyond its (1 - p) quantile, as a ratio to p,
    p = 1e-2, 1e-3 (`tail_ratios`); their mean |log10 ratio| (0 = perfect, an empty tail counts as
    mass 1/N, so it scores log10(N p): 3.3 at p = 1e-2 and 2.3 at p = 1e-3 for N = 200k; the
    per-p columns saturate at different values). Monte Carlo error: at p = 1e-3 the generated
    tail holds about 200 points, so a perfect model's log10 ratio has a standard deviation of
    about 0.03 (0.01 at p = 1e-2), generated and reference sampling together. Some coordinates
    load only positively (or only negatively) on the heavy factors; their other tail is light,
    and its quantile lies close to the bulk.
  * The Hill estimate of the tail index of ||x||_2 from the top 1% of the generated points
    (`hill_tail_index`), and the same estimator on the reference's top 1% (10k points). The norm's
    asymptotic index is 1.5 (the heaviest factor); at the 1% level the estimate also feels the
    lighter factors, so compare the generated estimate with the reference's, not with 1.5.

Time: ``--check`` (1 epoch, 7 runs) took 5 minutes on a 2-core CPU shared with other jobs, each
run 22 to 43 s of start-up, compilation and training, and about 10 s of evaluation (200k samples,
quantiles), plus 1M reference draws once per seed.

    python experiments/heavy_tailed_reconstruction.py --epochs=100 --seeds=0,1,2   # the full run
    python experiments/heavy_tailed_reconstruction.py --check                      # 1 epoch, seed 0

Writes ``--out`` (default runs/heavy_tailed_reconstruction; ``--check``: its check/): one workdir
per model and seed (runs already finished are not trained again, only evaluated), results.json and
summary.md (tables only: mean ± sample standard deviation over seeds, per seed, wall times,
failures).
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

DATASET = "synthetic_pareto"
NUM_CLASSES = 4
LATENT_DF = 5
DECODER_DF = 5

# (key, name, flags): the models of the comparison (``--config.gaussian_scale`` is common).
MODELS = (
    ("gaussian_vae", "Gaussian VAE",
     ["--latent=gaussian", "--noconditional", "--prior=standard", "--config.likelihood=gaussian"]),
    ("t3vae", f"t3VAE (nu={LATENT_DF})", [
        "--latent=multivariate_t", "--objective=gamma_power", "--config.likelihood=gaussian",
        f"--config.latent_df={LATENT_DF}", "--noconditional"
    ]),
    ("paretovae", f"ParetoVAE (our derivation, nu={LATENT_DF})", [
        "--latent=multivariate_symmetric_pareto", "--objective=gamma_power",
        "--config.likelihood=laplace", f"--config.latent_df={LATENT_DF}", "--noconditional"
    ]),
    ("paretovae_tdec", f"ParetoVAE, t decoder (our derivation, nu={LATENT_DF})", [
        "--latent=multivariate_symmetric_pareto", "--objective=gamma_power",
        "--config.likelihood=gaussian", f"--config.latent_df={LATENT_DF}", "--noconditional"
    ]),
    ("t_kl_tdec", f"t latent, KL, Student-t decoder (nu={LATENT_DF})", [
        "--latent=multivariate_t", f"--config.latent_df={LATENT_DF}",
        "--config.likelihood=student_t", f"--config.decoder_df={DECODER_DF}", "--noconditional"
    ]),
    ("sympareto_kl_spdec", f"symPareto latent, KL, symPareto decoder (nu={LATENT_DF})", [
        "--latent=multivariate_symmetric_pareto", f"--config.latent_df={LATENT_DF}",
        "--config.likelihood=symmetric_pareto", f"--config.decoder_df={DECODER_DF}",
        "--noconditional"
    ]),
    ("pareto_cvae", "Pareto CVAE (guide, learned prior)",
     ["--latent=pareto", "--conditional", "--config.likelihood=gaussian"]),
    ("pareto_cvae_learned", "Pareto CVAE, learned posterior scale", [
        "--latent=pareto", "--conditional", "--config.likelihood=gaussian",
        "--config.pareto_posterior_scale=learned"
    ]),
)

TAIL_PROBS = (1e-2, 1e-3)
EXTREME_FRACS = (0.05, 0.01)
HILL_FRAC = 0.01
NUM_REFERENCE = 1_000_000
REFERENCE_SEED = 10_000  # + the run's seed
WARMUP_EPOCHS = 0
DEFAULT_SCALE = 0.1


def common_flags(epochs: int, scale: float = DEFAULT_SCALE) -> list[str]:
  return [
      f"--dataset={DATASET}", "--config.latent_dim=4", "--config.hidden=(128, 128)",
      "--config.batch_size=128", "--config.learning_rate=1e-3", f"--config.num_epochs={epochs}",
      f"--config.warmup_epochs={WARMUP_EPOCHS}", f"--config.gaussian_scale={scale:g}",
      "--config.eval_batch_size=2000", "--config.summary_every_epochs=0", "--config.iwae_samples=8"
  ]


# ------------------------------------------------------------------ training


def train(workdir: str,
          flags: list[str],
          seed: int,
          epochs: int,
          scale: float = DEFAULT_SCALE) -> dict:
  """Trains one run (unless it finished before); returns its status and wall time."""
  return run_once.train_once(workdir, [f"--seed={seed}", *common_flags(epochs, scale), *flags])


# ------------------------------------------------------------------ metrics (module level, tested)


def extreme_indices(x: np.ndarray, frac: float) -> np.ndarray:
  """Indices of the round(frac n) (at least 1) rows of x with the largest ||x||_2, largest first."""
  norms = np.linalg.norm(np.asarray(x, np.float64), axis=1)
  k = max(1, int(round(frac * len(x))))
  return np.argsort(-norms, kind="stable")[:k]


def _errors(x: np.ndarray, recon: np.ndarray) -> dict:
  diff = recon - x
  err = np.abs(diff).ravel()
  rel = np.linalg.norm(diff, axis=1) / np.linalg.norm(x, axis=1)
  return {
      "mae": float(np.mean(err)),
      "median_ae": float(np.median(err)),
      "rmse": float(np.sqrt(np.mean(err**2))),
      "median_rel_l2": float(np.median(rel)),
  }


def reconstruction_metrics(x: np.ndarray,
                           recon: np.ndarray,
                           fracs=EXTREME_FRACS) -> dict[str, float]:
  """Errors of ``recon`` over all of ``x`` ((N, D)), and over the ``frac`` of its rows with the
  largest ||x||_2: ``recon_{mae,median_ae,rmse,median_rel_l2}`` and ``top{pct}_...``."""
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  recon = np.asarray(recon, np.float64).reshape(len(x), -1)
  out = {f"recon_{k}": v for k, v in _errors(x, recon).items()}
  out["recon_nonfinite_rows"] = int((~np.isfinite(recon).all(axis=1)).sum())
  for frac in fracs:
    idx = extreme_indices(x, frac)
    out.update({f"top{frac * 100:.3g}_{k}": v for k, v in _errors(x[idx], recon[idx]).items()})
    out[f"top{frac * 100:.3g}_count"] = len(idx)
  return out


def reference_quantiles(ref: np.ndarray, probs=TAIL_PROBS) -> dict:
  """p -> {"lower": (D,) p-quantiles, "upper": (D,) (1 - p)-quantiles, "norm": the (1 - p)
  quantile of ||x||_2} of the reference sample ``ref`` (N, D)."""
  ref = np.asarray(ref, np.float64)
  norm = np.linalg.norm(ref, axis=1)
  out = {}
  for p in probs:
    out[p] = {
        "lower": np.quantile(ref, p, axis=0),
        "upper": np.quantile(ref, 1 - p, axis=0),
        "norm": float(np.quantile(norm, 1 - p)),
    }
  return out


def _log_ratio(mass: float, p: float, n: int) -> float:
  return abs(math.log10(max(mass, 1.0 / n) / p))


def tail_ratios(x: np.ndarray, quantiles: dict) -> dict:
  """Generated masses beyond the reference's quantiles (`reference_quantiles`), as ratios to p.

  Returns, for each p: ``lower_{p}`` and ``upper_{p}`` ((D,) lists: P_gen(x_d < q_p) / p and
  P_gen(x_d > q_(1-p)) / p), ``norm_{p}`` (P_gen(||x|| > q) / p), ``coord_mean_abs_log10_{p}``;
  and ``coord_mean_abs_log10`` (over coordinates, both sides and every p) and
  ``norm_mean_abs_log10`` (over p). An empty tail counts as mass 1 / N in the logs.
  """
  x = np.asarray(x, np.float64)
  n = len(x)
  norm = np.linalg.norm(x, axis=1)
  out, coord_logs, norm_logs = {}, [], []
  for p, q in quantiles.items():
    lower = np.sum(x < q["lower"], axis=0) / n
    upper = np.sum(x > q["upper"], axis=0) / n
    logs = [_log_ratio(m, p, n) for m in np.concatenate([lower, upper])]
    out[f"lower_{p:g}"] = (lower / p).tolist()
    out[f"upper_{p:g}"] = (upper / p).tolist()
    out[f"coord_mean_abs_log10_{p:g}"] = float(np.mean(logs))
    coord_logs += logs
    mass = float(np.sum(norm > q["norm"]) / n)
    out[f"norm_{p:g}"] = mass / p
    norm_logs.append(_log_ratio(mass, p, n))
  out["coord_mean_abs_log10"] = float(np.mean(coord_logs))
  out["norm_mean_abs_log10"] = float(np.mean(norm_logs))
  return out


def hill_tail_index(values: np.ndarray, frac: float = HILL_FRAC) -> float:
  """Hill's estimate of the tail index alpha from the k = round(frac n) largest values:
  1 / alpha = mean_{i <= k} log(X_(i) / X_(k+1)), X_(1) >= X_(2) >= ... (nan if X_(k+1) <= 0).
  Its standard error is about alpha / sqrt(k)."""
  v = np.sort(np.asarray(values, np.float64).ravel())[::-1]
  v = v[np.isfinite(v)]
  k = max(1, int(round(frac * len(v))))
  if len(v) <= k or v[k] <= 0:
    return float("nan")
  return float(1.0 / np.mean(np.log(v[:k] / v[k])))


# ------------------------------------------------------------------ evaluation


def reference_sample(seed: int) -> np.ndarray:
  """NUM_REFERENCE draws of the true generator (the data's process, seed REFERENCE_SEED + seed)."""
  from pareto_vae_jax import data
  ds = data._synthetic_pareto(REFERENCE_SEED + seed, num_train=NUM_REFERENCE, num_test=1)
  return ds.train_x


def class_labels(n: int, seed: int) -> np.ndarray:
  """Labels 0..NUM_CLASSES-1 in equal counts (the remainder to the first classes), shuffled."""
  labels = np.arange(n) % NUM_CLASSES
  return np.random.default_rng(seed + 7919).permutation(labels).astype(np.int32)


def generate(vae, n: int, seed: int) -> np.ndarray:  # (n, 16)
  """n prior draws decoded to the decoder's mean; a CVAE's labels from `class_labels`."""
  import jax
  labels = class_labels(n, seed) if vae.spec.conditional else None
  x = vae.sample(jax.random.key(seed + 104_729), n, labels=labels)
  return np.asarray(x, np.float64).reshape(n, -1)


def evaluate(workdir: str, seed: int, num_gen: int, reference: dict, test_x: np.ndarray,
             test_y: np.ndarray) -> dict:
  """The run's metrics; ``reference``: {"quantiles": `reference_quantiles`, "hill": float}."""
  import jax
  from pareto_vae_jax import trained
  vae = trained.load(workdir)
  recon = vae.reconstruct(test_x,
                          test_y if vae.spec.conditional else None,
                          key=jax.random.key(seed + 1))
  metrics = reconstruction_metrics(test_x, np.asarray(recon))
  x = generate(vae, num_gen, seed)
  finite = np.isfinite(x).all(axis=1)
  metrics["nonfinite_samples"] = int((~finite).sum())
  metrics.update(tail_ratios(x[finite], reference["quantiles"]))
  metrics["hill_gen"] = hill_tail_index(np.linalg.norm(x[finite], axis=1))
  metrics["hill_ref"] = reference["hill"]
  with open(os.path.join(workdir, "test_metrics.json")) as f:
    library = json.load(f)
  metrics["library_test"] = {k: library.get(k) for k in ("elbo", "recon", "kl", "iwae")}
  metrics["step"] = vae.step
  return metrics


# ------------------------------------------------------------------ report


def mean_sd(values) -> str:
  values = [v for v in values if v is not None and math.isfinite(v)]
  if not values:
    return "n/a"
  if len(values) == 1:
    return f"{values[0]:.3g}"
  return f"{float(np.mean(values)):.3g} ± {float(np.std(values, ddof=1)):.3g}"


RECON_KEYS = (("recon_mae", "MAE"), ("recon_median_ae", "median AE"), ("recon_rmse", "RMSE"),
              ("top5_mae", "top 5% MAE"), ("top5_rmse", "top 5% RMSE"),
              ("top5_median_rel_l2", "top 5% median rel. L2"), ("top1_mae", "top 1% MAE"),
              ("top1_rmse", "top 1% RMSE"), ("top1_median_rel_l2", "top 1% median rel. L2"))
GEN_KEYS = (
    ("coord_mean_abs_log10", "coords mean abs log10"),
    *((f"coord_mean_abs_log10_{p:g}", f"coords, p={p:g}") for p in TAIL_PROBS),
    ("norm_mean_abs_log10", "norm mean abs log10"),
    *((f"norm_{p:g}", f"norm ratio p={p:g}") for p in TAIL_PROBS),
    ("hill_gen", "Hill alpha of norm, generated"),
    ("hill_ref", "Hill alpha, reference"),
)


def summary_markdown(out: dict) -> str:
  results = out["models"]
  lines = [
      f"# Heavy-tailed reconstruction on synthetic_pareto: {out['epochs']} epochs, "
      f"seeds {out['seeds']}", "",
      "Data `synthetic_pareto`: 16-D, 4 Pareto factors (tail indices 1.5, 2, 3, 5) mixed by a "
      "fixed matrix, noise 0.1, 10k train / 2k test. Common flags: `" +
      " ".join(out["common_flags"]) + "`. Reconstruction: one posterior draw of each test point "
      "decoded to the decoder's mean; top 5% / 1% = the 100 / 20 test points of largest "
      f"norm. Generation: {out['num_gen']:,} samples per run (prior draw, decoder mean) vs "
      f"{out['num_reference']:,} reference draws of the true generator; tail ratio = "
      "P_gen(beyond the reference's quantile) / p (1 = the true mass); Hill alpha from the top "
      f"{HILL_FRAC:.0%} of ||x||_2. An empty generated tail scores abs log10 = log10(N p) (" +
      ", ".join(f"{math.log10(out['num_gen'] * p):.2g} at p={p:g}" for p in TAIL_PROBS) +
      "), so the columns of different p saturate at different values. Mean ± sample standard "
      "deviation over seeds.", "", "## Reconstruction (test set)", "",
      "| model | " + " | ".join(h for _, h in RECON_KEYS) + " | training wall (median) |",
      "|---|" + "---|" * len(RECON_KEYS) + "---|"
  ]
  failures = []
  for key, r in results.items():
    ok = [e["metrics"] for e in r["seeds"].values() if "metrics" in e]
    walls = sorted(e["train"]["wall_s"] for e in r["seeds"].values())
    for seed, e in r["seeds"].items():
      if "metrics" not in e:
        last = (e["train"].get("error", "").strip().splitlines() or [""])[-1]
        failures.append(f"- {r['name']} seed {seed}: failed (rc {e['train']['returncode']}): "
                        f"{e.get('eval_error', last)}")
        continue
      m = e["metrics"]
      if m["nonfinite_samples"]:
        failures.append(f"- {r['name']} seed {seed}: {m['nonfinite_samples']} non-finite "
                        "generated samples (dropped)")
      if m["recon_nonfinite_rows"]:
        failures.append(f"- {r['name']} seed {seed}: {m['recon_nonfinite_rows']} non-finite "
                        "reconstructions")
    note = "" if len(ok) == len(r["seeds"]) else f" ({len(ok)}/{len(r['seeds'])} seeds)"
    lines.append(f"| {r['name']}{note} | " +
                 " | ".join(mean_sd([m[k] for m in ok]) for k, _ in RECON_KEYS) +
                 f" | {walls[len(walls) // 2]:.0f} s |")
  lines += [
      "", "## Generation tails (mean abs log10 ratio: 0 = the true tail mass)", "",
      "| model | " + " | ".join(h for _, h in GEN_KEYS) + " |", "|---|" + "---|" * len(GEN_KEYS)
  ]
  for key, r in results.items():
    ok = [e["metrics"] for e in r["seeds"].values() if "metrics" in e]
    lines.append(f"| {r['name']} | " +
                 " | ".join(mean_sd([m[k] for m in ok]) for k, _ in GEN_KEYS) + " |")
  lines += [
      "", "## Per seed", "", "| model | seed | MAE | RMSE | top 5% MAE | top 1% MAE | top 1% RMSE "
      "| coords mean abs log10 | norm mean abs log10 | Hill gen | Hill ref | library test ELBO | "
      "train wall | eval wall |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  ]
  for key, r in results.items():
    for seed, e in r["seeds"].items():
      if "metrics" not in e:
        lines.append(f"| {r['name']} | {seed} | failed (rc {e['train']['returncode']}) |")
        continue
      m = e["metrics"]
      elbo = m["library_test"]["elbo"]
      lines.append(f"| {r['name']} | {seed} | {m['recon_mae']:.4g} | {m['recon_rmse']:.4g} | "
                   f"{m['top5_mae']:.4g} | {m['top1_mae']:.4g} | {m['top1_rmse']:.4g} | "
                   f"{m['coord_mean_abs_log10']:.3f} | {m['norm_mean_abs_log10']:.3f} | "
                   f"{m['hill_gen']:.3g} | {m['hill_ref']:.3g} | "
                   f"{'n/a' if elbo is None else f'{elbo:.4g}'} | "
                   f"{e['train']['wall_s']:.0f} s | {m['eval_wall_s']:.0f} s |")
  lines += [
      "", f"Training wall time, sum over the runs (each run's wall.json, written when it "
      f"trained): {out['train_wall_s_total']:.0f} s; this invocation of the script (runs already "
      f"trained are only evaluated): {out['script_wall_s']:.0f} s.", "", "## Failures and warnings",
      "", *(failures or ["none"])
  ]
  return "\n".join(lines) + "\n"


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", default="runs/heavy_tailed_reconstruction")
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--epochs", type=int, default=100)
  parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="gaussian_scale")
  parser.add_argument("--num_gen", type=int, default=200_000)
  parser.add_argument("--models", default="", help="comma-separated keys (default: all)")
  parser.add_argument("--check", action="store_true", help="1 epoch, seed 0, into --out/check")
  args = parser.parse_args()
  if args.check:
    args.epochs, args.seeds, args.out = 1, "0", os.path.join(args.out, "check")
  seeds = [int(s) for s in args.seeds.split(",")]
  models = [m for m in MODELS if not args.models or m[0] in args.models.split(",")]
  os.makedirs(args.out, exist_ok=True)

  from pareto_vae_jax import data
  start = time.time()
  results = {key: {"name": name, "flags": flags, "seeds": {}} for key, name, flags in models}
  references = {}
  for seed in seeds:
    ds = None
    for key, name, flags in models:
      workdir = os.path.join(args.out, key, f"seed{seed}")
      info = train(workdir, flags, seed, args.epochs, args.scale)
      entry = {"train": info}
      if info["returncode"] == 0:
        if ds is None:
          ds = data.load_dataset(DATASET, seed=seed)
          ref = reference_sample(seed)
          references[seed] = {
              "quantiles": reference_quantiles(ref),
              "hill": hill_tail_index(np.linalg.norm(ref.astype(np.float64), axis=1)),
          }
          del ref
        t0 = time.time()
        try:
          metrics = evaluate(workdir, seed, args.num_gen, references[seed], ds.test_x, ds.test_y)
        except Exception as e:  # noqa: BLE001 (a failed evaluation is reported, the rest goes on)
          entry["eval_error"] = f"evaluation: {type(e).__name__}: {e}"[:500]
          print(f"  {key} seed {seed}: {entry['eval_error']}", flush=True)
        else:
          metrics["eval_wall_s"] = time.time() - t0
          entry["metrics"] = metrics
          print(
              f"  {key} seed {seed}: MAE {metrics['recon_mae']:.4f}  top1% MAE "
              f"{metrics['top1_mae']:.4f}  coords mean|log10| "
              f"{metrics['coord_mean_abs_log10']:.3f}  norm mean|log10| "
              f"{metrics['norm_mean_abs_log10']:.3f}  Hill {metrics['hill_gen']:.3f} "
              f"(ref {metrics['hill_ref']:.3f})",
              flush=True)
      results[key]["seeds"][str(seed)] = entry
  total_wall = time.time() - start

  train_wall = sum(e["train"]["wall_s"] for r in results.values() for e in r["seeds"].values())
  out = {
      "dataset": DATASET,
      "epochs": args.epochs,
      "seeds": seeds,
      "scale": args.scale,
      "num_gen": args.num_gen,
      "num_reference": NUM_REFERENCE,
      "reference_seed": REFERENCE_SEED,
      "warmup_epochs": WARMUP_EPOCHS,
      "common_flags": common_flags(args.epochs, args.scale),
      "reference": {
          str(s): {
              "hill": r["hill"],
              "quantiles": {
                  f"{p:g}": {
                      k: np.asarray(v).tolist() for k, v in q.items()
                  } for p, q in r["quantiles"].items()
              }
          } for s, r in references.items()
      },
      "train_wall_s_total": train_wall,
      "script_wall_s": total_wall,
      "models": results,
  }
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump(out, f, indent=1)
  summary = summary_markdown(out)
  with open(os.path.join(args.out, "summary.md"), "w") as f:
    f.write(summary)
  print(summary)


if __name__ == "__main__":
  main()
