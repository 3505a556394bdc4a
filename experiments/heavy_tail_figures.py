r"""Figures 12, 26 and 27 of the heavy-tail study (seed 002), from this repository's runs.

* Figure 12: the KL term over training for each beta of the study's sweep (0, 0.01, 0.02, 0.03,
  0.1, 0.2, 0.3), one panel per latent family. The study reads it as: the learned Inverse
  Gaussian stays close to its prior, the Normal and LogNormal posteriors move far from theirs.
* Figures 26 / 27: one generated digit per class and family. The study's generation (its
  section 3.7) samples "from a distribution which parameters are given by the average of the
  learned distribution parameters on the test set, for each class" and decodes the draws;
  figure 26 with models trained on MNIST, figure 27 with models trained on MNIST with normal
  noise.

    python experiments/heavy_tail_figures.py --beta_root=runs/repro/beta \
        --generation_roots runs/repro/heavy_tail runs/repro/denoise --out_dir=docs/figures

Run directories: ``<beta_root>/<latent>-beta<b>/metrics.jsonl`` (runs still training are drawn
with the epochs they have); ``<root26>/<latent>/`` and ``<root27>/<latent>-normal/`` with
``test_metrics.json`` (finished runs). Missing inputs skip their figure with a printed note.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any

import numpy as np

# The study's sweep and its three families, plus this library's Pareto latent.
STUDY_BETAS = (0.0, 0.01, 0.02, 0.03, 0.1, 0.2, 0.3)
FAMILIES = ("gaussian", "lognormal", "inverse_gaussian", "pareto")
FAMILY_NAMES = {
    "gaussian": "Normal",
    "lognormal": "LogNormal",
    "inverse_gaussian": "Inverse Gaussian",
    "pareto": "Pareto",
}
BETA_DIR = re.compile(r"^(?P<latent>[a-z_]+)-beta(?P<beta>[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)$")

# ------------------------------------------------------------------------------------------------
# Figure 12: KL over training per beta.


def read_kl_curve(path: str) -> tuple[np.ndarray, np.ndarray]:
  """``(epochs, kl)`` of the train lines of a ``metrics.jsonl``, sorted by epoch.

  Each train line is one epoch's mean over its steps of the per-example KL (nats, summed over
  latent dimensions). A re-run epoch (after a resume) replaces the earlier line, as in
  ``evaluate._train_records``; a line that is not complete JSON (a file being written) is
  skipped, so a run still training is drawn with the epochs it has finished.
  """
  by_epoch = {}
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue
      if record.get("split") == "train" and "epoch" in record and "kl" in record:
        by_epoch[int(record["epoch"])] = float(record["kl"])
  epochs = np.array(sorted(by_epoch), np.int64)
  return epochs, np.array([by_epoch[e] for e in epochs], np.float64)


def _run_info(workdir: str) -> dict[str, Any]:
  """Whether a run finished (``test_metrics.json``) and how many epochs it was set to train."""
  finished = os.path.exists(os.path.join(workdir, "test_metrics.json"))
  num_epochs = None
  config = os.path.join(workdir, "config.json")
  if os.path.exists(config):
    with open(config) as f:
      num_epochs = json.load(f).get("num_epochs")
  return {"finished": finished, "num_epochs": num_epochs}


def find_beta_runs(root: str) -> list[dict[str, Any]]:
  """The runs ``<root>/<latent>-beta<b>`` that have a ``metrics.jsonl`` with train lines."""
  runs = []
  if not os.path.isdir(root):
    return runs
  for name in sorted(os.listdir(root)):
    match = BETA_DIR.match(name)
    path = os.path.join(root, name, "metrics.jsonl")
    if not match or not os.path.exists(path):
      continue
    epochs, kl = read_kl_curve(path)
    if len(epochs):
      runs.append({
          "latent": match["latent"],
          "beta": float(match["beta"]),
          "epochs": epochs,
          "kl": kl,
          **_run_info(os.path.join(root, name))
      })
  return runs


def find_family_runs(root: str) -> list[dict[str, Any]]:
  """The runs ``<root>/<family>`` of each family (beta from their config): the fallback of
  figure 12 when no beta sweep has run yet, so that its drawing is still exercised."""
  runs = []
  for latent in FAMILIES:
    workdir = os.path.join(root, latent)
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
      continue
    epochs, kl = read_kl_curve(path)
    with open(os.path.join(workdir, "config.json")) as f:
      beta = float(json.load(f)["beta"])
    if len(epochs):
      runs.append({
          "latent": latent,
          "beta": beta,
          "epochs": epochs,
          "kl": kl,
          **_run_info(workdir)
      })
  return runs


def _curve_label(run: dict[str, Any]) -> str:
  """``β=0.02 (77/100 ep., training)``: the beta and how much of the run the curve holds."""
  done = int(run["epochs"][-1])
  total = f"/{run['num_epochs']}" if run["num_epochs"] and run["num_epochs"] != done else ""
  state = "" if run["finished"] else ", training"
  return f"β={run['beta']:g} ({done}{total} ep.{state})"


def kl_by_beta(runs: list[dict[str, Any]], path: str, *, title_prefix: str) -> str:
  """One panel per latent family, one curve per beta: the training KL (nats) against epoch.

  The panels share the y range so the families compare at a glance (the study's point is how
  far each family's posterior moves from its prior). The y axis is logarithmic when the curves
  span more than a decade, as the KL at beta = 0 runs far above the KL at beta = 0.3.
  """
  from pareto_vae_jax import plots
  families = [f for f in FAMILIES if any(r["latent"] == f for r in runs)]
  families += sorted({r["latent"] for r in runs} - set(families))
  kl = np.concatenate([r["kl"] for r in runs])
  log_y = bool((kl > 0).all() and kl.max() / kl.min() > 10)
  epochs = sorted({int(r["epochs"][-1]) for r in runs})
  span = f"{epochs[0]}" if len(epochs) == 1 else f"{epochs[0]}-{epochs[-1]}"
  names = ", ".join(FAMILY_NAMES.get(f, f) for f in families)
  absent = [FAMILY_NAMES[f] for f in FAMILIES[:3] if f not in families]
  title = f"{title_prefix}: {names}; {span} epochs"
  if absent:
    title += f" (no runs yet: {', '.join(absent)})"
  colors = {b: f"C{i}" for i, b in enumerate(STUDY_BETAS)}
  with plots._figure(path, 1, len(families),
                     (len(families) * plots._PANEL[0] + 0.6, plots._PANEL[1] + 0.4)) as (fig, axes):
    for ax, family in zip(axes[0], families):
      for run in sorted((r for r in runs if r["latent"] == family), key=lambda r: r["beta"]):
        ax.plot(run["epochs"],
                run["kl"],
                "-",
                lw=1.5,
                color=colors.get(run["beta"]),
                label=_curve_label(run))
      ax.set(title=FAMILY_NAMES.get(family, family), xlabel="epoch")
      if log_y:
        ax.set_yscale("log")
        ax.set_ylim(kl.min() / 1.3, kl.max() * 1.3)
      else:
        ax.set_ylim(min(0.0, kl.min()), 1.05 * kl.max())
      ax.grid(alpha=0.3, which="both" if log_y else "major")
      ax.legend(loc="best")
    axes[0][0].set_ylabel("KL(q(z|x) || p(z)) per example (nats)")
    fig.suptitle(title)
  return path


# ------------------------------------------------------------------------------------------------
# Figures 26 and 27: generation from the per-class average of the posterior parameters.


def class_average(params: dict[str, np.ndarray], labels: np.ndarray,
                  num_classes: int) -> dict[str, np.ndarray]:
  """Per class c, the arithmetic mean over the test examples of class c of each parameter.

  Args:
    params: name -> ``[N, D]`` (or ``[N, ...]``) per-example posterior parameters.
    labels: ``[N]`` integer classes in ``[0, num_classes)``.
    num_classes: C.

  Returns:
    name -> ``[C, D]``: the study's "average of the learned distribution parameters on the
    test set, for each class" (every parameter averaged the same way, positive ones too).

  Raises:
    ValueError: a class has no example, or the labels are out of range.
  """
  labels = np.asarray(labels)
  if labels.min() < 0 or labels.max() >= num_classes:
    raise ValueError(f"labels must lie in [0, {num_classes}); got {labels.min()}..{labels.max()}.")
  counts = np.bincount(labels, minlength=num_classes)
  if (counts == 0).any():
    raise ValueError(f"classes {np.flatnonzero(counts == 0).tolist()} have no example.")
  averages = {}
  for name, value in params.items():
    value = np.asarray(value, np.float64)
    sums = np.zeros((num_classes,) + value.shape[1:], np.float64)
    np.add.at(sums, labels, value)
    averages[name] = sums / counts.reshape((-1,) + (1,) * (value.ndim - 1))
  return averages


def encoder_input_note(config) -> str:
  """Which input the encoder saw when the test set was encoded (``evaluate.encode_test_set``)."""
  if config.noise == "none":
    return "clean test digits"
  if config.noise_channels:
    return (f"test digits with {config.noise_channels} channels of {config.noise_scale:g} × "
            f"{config.noise} noise (one fixed draw)")
  return f"test digits + {config.noise_scale:g} × {config.noise} noise (one fixed draw)"


def generate(workdir: str, samples_per_class: int, seed: int) -> dict[str, Any]:
  """Draws from each class's averaged posterior of a run, decoded to pixels.

  The run is restored from its newest checkpoint (``evaluate.load_run``, which builds the model
  with ``trained.load``) and encodes its test set as ``evaluate.encode_test_set`` does (a
  denoising run sees its noisy input, as in training). The family's distribution is rebuilt
  with the per-class averaged parameters, ``samples_per_class`` draws per class are taken with
  a fixed key (positive families in log space, as in training), and the decoder's mean of
  each is returned.

  Returns:
    ``{"pixels": [k, C, H, W], "averages": name -> [C, D], "family", "note"}``.
  """
  import jax
  import jax.numpy as jnp
  from pareto_vae_jax import distributions as D
  from pareto_vae_jax import evaluate, vae
  run = evaluate.load_run(workdir)
  if run.spec.conditional:
    raise ValueError(f"{workdir}: a conditional model; the study's generation is unconditional.")
  encoded = evaluate.encode_test_set(run)
  num_classes = run.ds.num_classes
  averages = class_average(encoded["params"], encoded["labels"], num_classes)
  info = D.family_info(run.config.latent)
  dist = info.cls(*(jnp.asarray(averages[n], jnp.float32) for n in info.cls.param_names))
  keys = jax.random.split(jax.random.key(seed), num_classes)
  draws, in_log = vae.draw(keys, dist, samples_per_class)  # [k, C, D]
  z_in = vae.decoder_input(draws.reshape(-1, draws.shape[-1]), in_log, run.spec.decode_log)
  out = vae.decode(run.spec, run.params, z_in, None)
  pixels = jnp.clip(vae.LIKELIHOODS[run.spec.likelihood].mean(run.spec, out), 0, 1)
  shape = (samples_per_class, num_classes) + tuple(pixels.shape[1:3])
  return {
      "pixels": np.asarray(pixels[..., 0]).reshape(shape),
      "averages": averages,
      "family": run.config.latent,
      "note": encoder_input_note(run.config),
      "epochs": run.step // run.steps_per_epoch,
  }


def find_generation_runs(root: str, suffix: str) -> dict[str, str]:
  """Family -> ``<root>/<family><suffix>`` for the finished runs (``test_metrics.json``)."""
  found = {}
  for family in FAMILIES:
    workdir = os.path.join(root, family + suffix)
    if os.path.exists(os.path.join(workdir, "test_metrics.json")):
      found[family] = workdir
  return found


def generation_grid(results: list[dict[str, Any]], path: str, *, title: str) -> str:
  """Rows: each family's draws (one row per draw); columns: classes 0-9. Draw j of a class
  under every family uses the same key, so rows differ by the family, not by the noise."""
  from pareto_vae_jax import plots
  pixels = np.concatenate([r["pixels"] for r in results])  # [F * k, C, H, W]
  row_labels = [
      f"{FAMILY_NAMES.get(r['family'], r['family'])} {j + 1}" for r in results
      for j in range(len(r["pixels"]))
  ]
  return plots.image_grid(pixels,
                          path,
                          title=title,
                          row_labels=row_labels,
                          col_labels=[str(c) for c in range(pixels.shape[1])],
                          xlabel="class (its test digits' averaged posterior parameters)",
                          ylabel="family, draw")


def summary_lines(results: list[dict[str, Any]]) -> list[str]:
  """Per family: each averaged parameter's range over classes and dimensions, and how much the
  draws of one class differ (pixel standard deviation across draws, mean over pixels and
  classes; 0 when every draw decodes to the same image)."""
  lines = []
  for r in results:
    parts = [
        f"{name} {v.min():.3g}..{v.max():.3g} (mean {v.mean():.3g})"
        for name, v in r["averages"].items()
    ]
    parts.append(f"pixel std across draws {r['pixels'].std(0).mean():.4f}")
    lines.append(f"  {FAMILY_NAMES.get(r['family'], r['family'])}: " + "; ".join(parts))
  return lines


def generation_figure(root: str, suffix: str, path: str, label: str, samples_per_class: int,
                      seed: int) -> str | None:
  """Figure 26 (``suffix=""``) or 27 (``suffix="-normal"``): the families' runs under ``root``
  tiled by ``generation_grid``; None, with a printed note, when no such run has finished."""
  runs = find_generation_runs(root, suffix)
  if not runs:
    print(f"{label}: no finished run <family>{suffix} under {root}; skipped.")
    return None
  results = [generate(w, samples_per_class, seed) for w in runs.values()]
  notes = sorted({r["note"] for r in results})
  epochs = sorted({r["epochs"] for r in results})
  title = (f"{label}: draws from each class's averaged posterior, decoded (mean of p(x|z)); "
           f"{'/'.join(map(str, epochs))} epochs\nencoder input: {'; '.join(notes)}; "
           f"key {seed} (same keys for every family)")
  generation_grid(results, path, title=title)
  print(f"{label}: {path} from {', '.join(runs.values())}")
  print("\n".join(summary_lines(results)))
  return path


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--beta_root", default="runs/repro/beta")
  parser.add_argument("--fallback_root",
                      default="runs/repro/heavy_tail",
                      help="figure 12 from these runs' own KL curves when --beta_root has none")
  parser.add_argument("--generation_roots",
                      nargs="+",
                      default=["runs/repro/heavy_tail", "runs/repro/denoise"],
                      help="the figure-26 root (runs <family>), then the figure-27 root "
                      "(runs <family>-normal)")
  parser.add_argument("--out_dir", default="docs/figures")
  parser.add_argument("--samples_per_class", type=int, default=4)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--skip", nargs="*", default=[], choices=["12", "26", "27"])
  args = parser.parse_args(argv)
  os.makedirs(args.out_dir, exist_ok=True)

  if "12" not in args.skip:
    path = os.path.join(args.out_dir, "heavy_tail_fig12_kl_by_beta.png")
    runs = find_beta_runs(args.beta_root)
    if runs:
      kl_by_beta(runs, path, title_prefix="Training KL per β")
    else:
      print(f"Figure 12: no <latent>-beta<b> run with metrics.jsonl under {args.beta_root}; "
            f"drawing the runs of {args.fallback_root} instead.")
      runs = find_family_runs(args.fallback_root)
      if runs:
        kl_by_beta(runs,
                   path,
                   title_prefix=f"NOT the β sweep: training KL of {args.fallback_root} runs")
      else:
        path = None
        print(f"Figure 12: no run under {args.fallback_root} either; skipped.")
    if path:
      print(f"Figure 12: {path}")
      for run in runs:
        print(f"  {run['latent']} {_curve_label(run)}: KL epoch 1 {run['kl'][0]:.2f}, "
              f"last {run['kl'][-1]:.2f} nats")

  sets = [("26", "", "Figure 26 (MNIST)"), ("27", "-normal", "Figure 27 (MNIST + normal noise)")]
  for (number, suffix, label), root in zip(sets, args.generation_roots):
    if number in args.skip:
      continue
    name = f"heavy_tail_fig{number}_generation.png"
    generation_figure(root, suffix, os.path.join(args.out_dir, name), label, args.samples_per_class,
                      args.seed)


if __name__ == "__main__":
  sys.exit(main())
