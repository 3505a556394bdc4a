r"""Evaluate trained runs: test ELBO, IWAE negative log-likelihood, active units, pictures.

    python -m pareto_vae_jax.evaluate --workdir=runs/mnist-pareto-cvae-standard-seed0
    python -m pareto_vae_jax.evaluate --workdir=runs/a --workdir=runs/b --summary=summary.md
    python -m pareto_vae_jax.evaluate --family_gallery=docs/figures/latent_families.png

For each workdir it restores the newest readable checkpoint (the model is rebuilt from the
config saved with it) and writes ``evaluation.json``, ``evaluation.md`` and the pictures into
``<workdir>/evaluation/``. The IWAE bound scores every latent family with its exact
log-density (``log_prob``, or ``log_prob_log`` at the log-space draw), so Gaussian, LogNormal,
Pareto and Inverse-Gaussian models are compared on one scale.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags

from pareto_vae_jax._xla_workaround import jit
from pareto_vae_jax import data as data_lib
from pareto_vae_jax import distributions as D
from pareto_vae_jax.distributions import joint
from pareto_vae_jax import metrics, plots, reporting, sequence_eval, trained, vae

Array = jax.Array


@dataclasses.dataclass
class Run:
  """A trained run restored from its workdir, with its dataset."""

  workdir: str
  config: ml_collections.ConfigDict
  spec: vae.VAESpec
  params: Any
  ds: data_lib.Dataset
  step: int
  steps_per_epoch: int


def load_run(workdir: str) -> Run:
  """The newest readable checkpoint in ``workdir`` (``trained.load``) and the run's dataset.

  Raises:
    FileNotFoundError: ``workdir`` holds no readable checkpoint (the message says how to
      train one).
  """
  model = trained.load(workdir)
  config = model.config
  ds = data_lib.load_dataset(config.dataset, seed=config.seed, data_dir=config.get("data_dir", ""))
  return Run(workdir=workdir,
             config=config,
             spec=model.spec,
             params=model.params,
             ds=ds,
             step=model.step,
             steps_per_epoch=len(ds.train_x) // config.batch_size)


# ------------------------------------------------------------------------------------------------
# Posterior statistics.


def code_statistic(q: D.Distribution) -> tuple[Array, str]:
  """A finite per-dimension location of the posterior, and its name.

  ``E[z]`` for a real-valued family; ``E[log z]`` for a positive one, where the mean can be
  infinite (a Pareto with alpha <= 1) and the log is the scale the draws live on.
  """
  if joint.is_joint(q):  # full covariance: closed form; flows: the mean of 64 draws
    return joint.code_mean(q, jax.random.key(0)), "E[z | x]"
  name = statistic_name(D.family_info(q).name)
  if name == "E[log z | x]":
    return D.mean_log(q), name
  if name == "loc(x)":
    return q.loc, name
  return D.mean(q), name


def statistic_name(family: str) -> str:
  """The name of ``code_statistic`` for a family.

  A real family with a location parameter other than the Gaussian (Student-t, symmetric
  Pareto) uses it: its mean is infinite for heavy enough tails; ``loc`` is the median.
  """
  if joint.is_joint_family(family):
    return "E[z | x]"
  info = D.family_info(family)
  if info.mean_log is not None:
    return "E[log z | x]"
  if "loc" in info.param_names and info.name != "gaussian":
    return "loc(x)"
  return "E[z | x]"


def encode_test_set(run: Run,
                    *,
                    batch_size: int = 1000,
                    max_examples: int | None = None) -> dict[str, np.ndarray]:
  """Per test example: the code statistic [N, D], the encoder's parameters, and the labels."""
  x, y = run.ds.test_x, run.ds.test_y
  if max_examples is not None:
    x, y = x[:max_examples], y[:max_examples]
  key = jax.random.key(0)

  @jit
  def encode(params, x, y, index):
    # Denoising runs encode the corrupted input (a fixed draw), as in training.
    inputs = vae.encoder_input(run.spec, x, key, index)
    q = vae.encode(run.spec, params, inputs, y)
    p = vae.prior(run.spec, params, y, x.shape[0])
    if joint.is_joint(q):  # one KL for the whole vector: no per-dimension KL
      kl = jnp.full((x.shape[0], run.spec.latent_dim), jnp.nan)
      return q, kl, joint.code_mean(q, key), joint.per_dim_params(q)
    kl = D.kl(q, p) if D.has_closed_form_kl(type(q), type(p)) else jnp.full(q.batch_shape, jnp.nan)
    return q, kl, code_statistic(q)[0], dict(zip(q.param_names, q.params))

  stats, params, kls = [], {}, []
  for start in range(0, len(x), batch_size):
    sl = slice(start, start + batch_size)
    _, kl, stat, q_params = encode(run.params, jnp.asarray(x[sl]), jnp.asarray(y[sl]),
                                   jnp.arange(start, start + len(x[sl])))
    stats.append(np.asarray(stat))
    kls.append(np.asarray(kl, np.float64))
    for name, value in q_params.items():
      params.setdefault(name, []).append(np.asarray(value))
  return {
      "codes": np.concatenate(stats),
      "labels": np.asarray(y),
      "kl": np.concatenate(kls),
      "params": {
          k: np.concatenate(v) for k, v in params.items()
      }
  }


def likelihood_statement(config) -> str:
  """What the reconstruction term and hence the ELBO and IWAE numbers mean."""
  if config.likelihood == "bernoulli":
    if config.binarize:
      return ("Bernoulli likelihood on dynamically binarized pixels: each test digit is scored "
              "on one Bernoulli(x) draw, fixed by the seed (a normalized log-likelihood).")
    return ("Bernoulli likelihood (BCE) on the [0, 1] intensities, not binarized: a "
            "continuous-valued objective, not a normalized log-likelihood.")
  if config.likelihood == "gaussian":
    return (f"Gaussian likelihood with fixed standard deviation {config.gaussian_scale}: a "
            "normalized log-density of the inputs.")
  if config.likelihood == "matlab_mse":
    return ("MATLAB's mse (the heavy-tail study's): reconstruction is half the squared error "
            "summed over the input (the summed squared error is twice it); ELBO and IWAE are "
            "then scores, not bounds on a log-likelihood.")
  how = "summed over" if config.likelihood == "sse" else "averaged over"
  return (f"Squared error (the heavy-tail study's loss): reconstruction is the squared error {how} "
          "the input; ELBO and IWAE are then scores, not bounds on a log-likelihood.")


# ------------------------------------------------------------------------------------------------
# Metrics.


def evaluate_run(run: Run,
                 *,
                 iwae_samples: int = 1000,
                 active_threshold: float = 0.01,
                 max_examples: int | None = None,
                 seed: int = 0,
                 verbose: bool = True) -> dict[str, Any]:
  """Test ELBO, reconstruction, KL, the IWAE bound (k = ``iwae_samples``) and active units."""
  config, ds = run.config, run.ds
  x, y = ds.test_x, ds.test_y
  if max_examples is not None:
    x, y = x[:max_examples], y[:max_examples]
  # k draws of every example of a batch are decoded at once: keep k * batch near 32k images.
  batch_size = max(1, min(config.eval_batch_size, 32768 // iwae_samples))
  eval_fn = vae.make_eval_fn(run.spec, iwae_samples)
  start = time.time()
  result = vae.evaluate(eval_fn, run.params, x, y, batch_size, vae.eval_key(seed), progress=verbose)
  encoded = encode_test_set(run, max_examples=max_examples)
  activity, num_active = metrics.active_units(encoded["codes"], threshold=active_threshold)
  # The rate each dimension spends, E_x KL(q(z_d | x) || p(z_d)): a collapsed dimension spends
  # none, whatever its location does (a Pareto's location and width move together).
  kl_per_dim = encoded["kl"].mean(0)
  statistic = statistic_name(config.latent)
  if run.spec.sequential:  # accuracy, exact match, prior validity, ... (sequence_eval)
    result.update(sequence_eval.sequence_metrics(run.spec, run.params, ds, seed))
  result.update({
      "iwae_samples": iwae_samples,
      "nll_iwae": -result["iwae"],
      "active_units": num_active,
      "latent_dim": int(config.latent_dim),
      "activity": [float(a) for a in activity],
      "active_threshold": active_threshold,
      "kl_per_dim": [float(k) for k in kl_per_dim],
      # None where the KL has no closed form per dimension (a mixture prior's is joint).
      "kl_active_units":
          (None if np.isnan(kl_per_dim).any() else int(np.sum(kl_per_dim > active_threshold))),
      "activity_statistic": f"Var_x {statistic}",
      "likelihood": likelihood_statement(config),
      "step": run.step,
      "epochs": run.step / run.steps_per_epoch,
      "eval_seconds": time.time() - start,
      "run": {
          k: config[k] for k in ("dataset", "latent", "conditional", "prior", "latent_dim",
                                "architecture", "likelihood", "binarize", "beta", "seed")
      },
  })
  return result


SEQUENCE_METRICS = ("tf_type_accuracy", "fr_type_accuracy", "tf_exact_match", "fr_exact_match",
                    "tf_feature_mae", "prior_validity", "prior_uniqueness", "prior_novelty")


def markdown(results: dict[str, Any], title: str) -> str:
  """A short markdown report of ``evaluate_run``'s results."""
  r = results
  statistic = r["activity_statistic"].replace("|", "\\|")  # a bare | would split the cell
  lines = [
      f"# {title}",
      "",
      f"Step {r['step']} ({r['epochs']:.3g} epochs); {r['num_examples']} test examples.",
      "",
      "| metric | value |",
      "|---|---|",
      f"| test ELBO | {r['elbo']:.2f} ± {r['elbo_stderr']:.2f} |",
      f"| reconstruction | {r['recon']:.2f} ± {r['recon_stderr']:.2f} |",
      f"| KL | {r['kl']:.2f} ± {r['kl_stderr']:.2f} |",
      f"| IWAE bound (k = {r['iwae_samples']}) | {r['iwae']:.2f} ± {r['iwae_stderr']:.2f} |",
      f"| IWAE negative log-likelihood | {r['nll_iwae']:.2f} |",
      f"| active units ({statistic} > {r['active_threshold']}) | "
      f"{r['active_units']} / {r['latent_dim']} |",
      f"| dimensions with mean KL > {r['active_threshold']} nats | " +
      ("n/a (no per-dimension closed form)"
       if r["kl_active_units"] is None else f"{r['kl_active_units']} / {r['latent_dim']}") + " |",
      *(f"| {k} | {'n/a' if r[k] is None else format(r[k], '.4g')} |" for k in SEQUENCE_METRICS
        if k in r),
      "",
      f"Likelihood: {r['likelihood']}",
      "",
      "Means ± standard errors over test examples. Per-dimension activity: " +
      ", ".join(f"{a:.3g}" for a in r["activity"]) + ".",
      "",
  ]
  return "\n".join(lines)


def summary_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
  """One markdown table comparing several evaluated runs."""
  lines = [
      "| run | latent | cond. | prior | ELBO | recon | KL | IWAE NLL (k) | active | "
      "KL > thr. |", "|---|---|---|---|---|---|---|---|---|---|"
  ]
  for name, r in rows:
    run = r["run"]
    lines.append(
        f"| {name} | {run['latent']} | {'yes' if run['conditional'] else 'no'} | "
        f"{run['prior']} | {r['elbo']:.2f} ± {r['elbo_stderr']:.2f} | {r['recon']:.2f} | "
        f"{r['kl']:.2f} | {r['nll_iwae']:.2f} ± {r['iwae_stderr']:.2f} ({r['iwae_samples']}) | "
        f"{r['active_units']}/{r['latent_dim']} | " +
        ("n/a" if r["kl_active_units"] is None else f"{r['kl_active_units']}/{r['latent_dim']}") +
        " |")
  return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# Pictures.


def _decoder_input_from_statistic(run: Run, values: np.ndarray) -> Array:
  """Codes given as the statistic's values (E[z], or E[log z] for positive families)."""
  positive = (not joint.is_joint_family(run.config.latent) and
              D.family_info(run.config.latent).mean_log is not None)
  values = jnp.asarray(values, jnp.float32)
  return vae.decoder_input(values, positive, run.spec.decode_log)


@functools.cache
def _decode_fn(spec: vae.VAESpec):
  """The jitted decoder of a spec (hashable): compiled once per model, not once per picture."""
  return jit(functools.partial(vae.decode, spec))


def decode_pixels(run: Run, values: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """Pixels ``[N, H, W]`` of the decoder's means for codes given as the statistic's values.

  ``labels`` (``[N]``) condition a conditional model; an unconditional one ignores them.
  """
  out = _decode_fn(run.spec)(run.params, _decoder_input_from_statistic(run, values),
                             jnp.asarray(labels, jnp.int32))
  return reporting._to_pixels(out, run.spec)[..., 0]


# The report's figure 3 decodes a 2-D latent on a fixed grid over [-3, 3]^2, the central mass
# of the N(0, 1) prior, rather than on the test codes' quantiles (``traversal.png``); the
# report gives no count of steps. A conditional model's grid is drawn under GRID_LABEL.
GRID_LIMIT = 3.0
GRID_STEPS = 15
GRID_LABEL = 0
# The top rows of the report's figure 5: one interpolation decoded under the labels 1 and 7.
LABEL_ROWS = (1, 7)
INTERPOLATION_STEPS = 10


def positive_support(family: str) -> bool:
  """Whether a latent family lives on (0, inf) (Pareto, LogNormal, ...): drawn in log space.

  Joint families (full-covariance Gaussian, flows, multivariate t) are real-valued.
  """
  return not joint.is_joint_family(family) and D.family_info(family).rsample_log is not None


def traversal_grid_skip_reason(config) -> str | None:
  """Why the fixed-grid traversal (``traversal_grid``) does not apply to a run; None if it does.

  A grid of pictures has two axes, so the latent must be 2-D; and it spans [-3, 3], so the
  family must live on the real line (a positive family's codes are never <= 0).
  """
  if config.latent_dim != 2:
    return f"the latent is {config.latent_dim}-D; the [-3, 3] grid needs a 2-D one"
  if positive_support(config.latent):
    return f"{config.latent} codes are positive; the grid spans [-3, 3]"
  return None


def fixed_grid(limit: float = GRID_LIMIT,
               steps: int = GRID_STEPS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """A ``steps`` x ``steps`` grid of 2-D codes over [-limit, limit]^2, in reading order.

  Returns:
    ``(z [steps * steps, 2], z1 [steps], z2 [steps])``: the picture's row r, column c is
    ``z[r * steps + c] = (z1[c], z2[r])``. ``z1`` rises left to right and ``z2`` falls top to
    bottom, so that up is positive as on a plot's axis.
  """
  z1 = np.linspace(-limit, limit, steps)
  z2 = z1[::-1].copy()
  return np.stack(np.meshgrid(z1, z2), -1).reshape(-1, 2), z1, z2


def traversal_grid(run: Run) -> dict[str, Any] | None:
  """The report's figure 3: the decoder's means at every code of ``fixed_grid()``.

  Returns None where ``traversal_grid_skip_reason`` gives a reason, else ``images``
  ``[rows, cols, H, W]`` (row r, column c decoded at ``(z1[c], z2[r])``), ``z1``, ``z2`` and
  ``label``: GRID_LABEL for a conditional model, None for an unconditional one.
  """
  if traversal_grid_skip_reason(run.config) is not None:
    return None
  z, z1, z2 = fixed_grid()
  label = GRID_LABEL if run.config.conditional else None
  images = decode_pixels(run, z, np.full(len(z), label or 0))
  return {
      "images": images.reshape(len(z2), len(z1), *images.shape[1:]),
      "z1": z1,
      "z2": z2,
      "label": label
  }


def label_rows(num_classes: int) -> tuple[int, int]:
  """The two labels of ``interpolation_under_labels``: 1 and 7, or the first and last class
  where there are fewer than eight."""
  return LABEL_ROWS if num_classes > max(LABEL_ROWS) else (0, num_classes - 1)


def interpolation_under_labels(run: Run, codes: np.ndarray, labels: np.ndarray,
                               seed: int) -> dict[str, Any] | None:
  """The top rows of the report's figure 5: one interpolation under two labels, one row each.

  The path runs linearly, in the statistic's space, from one test digit's code to another's
  (two digits drawn with ``seed``); both rows decode the same codes, so they differ only in
  the label the decoder is given: what the label controls and what z does. None for an
  unconditional model.

  Returns:
    ``images [2, steps, H, W]``, the ``path`` of codes ``[steps, D]``, ``t`` ``[steps]``, the
    ``rows``' labels, the test indices ``ends`` of the two digits and their classes
    ``end_labels``.
  """
  if not run.config.conditional:
    return None
  # Its own stream of draws: the other pictures keep the digits they had before it.
  ends = np.random.default_rng([seed, 5]).choice(len(codes), 2, replace=False)
  t = np.linspace(0, 1, INTERPOLATION_STEPS)
  path = codes[ends[0]] * (1 - t[:, None]) + codes[ends[1]] * t[:, None]
  rows = label_rows(run.ds.num_classes)
  images = decode_pixels(run, np.tile(path, (len(rows), 1)), np.repeat(rows, len(t)))
  return {
      "images": images.reshape(len(rows), len(t), *images.shape[1:]),
      "path": path,
      "t": t,
      "rows": rows,
      "ends": ends,
      "end_labels": np.asarray(labels)[ends]
  }


def latent_statistic(config, statistic: str) -> str:
  """``statistic`` as ``latent.png`` names it: a conditional model's encoder is given the label
  as well, so its codes are, e.g., E[z | x, y]."""
  if not config.conditional:
    return statistic
  return statistic.replace("| x]", "| x, y]").replace("(x)", "(x, y)")


def latent_title(config, statistic: str, name: str) -> str:
  """The title of ``latent.png``.

  A conditional model's decoder is given the label: the label carries the class, so z need not
  separate the classes (the report's CVAE latent, whose classes mix), and the title says so.
  """
  statistic = latent_statistic(config, statistic)
  if not config.conditional:
    return f"Test codes {statistic}, by class ({name})"
  return (f"Test codes {statistic}, by class ({name}):\n"
          "the label carries the class, so the classes may overlap in z")


def write_pictures(run: Run,
                   out_dir: str,
                   *,
                   encoded: dict[str, np.ndarray] | None = None,
                   seed: int = 0) -> list[str]:
  """Every picture of a run into ``out_dir``; returns the paths written."""
  os.makedirs(out_dir, exist_ok=True)
  config, ds = run.config, run.ds
  encoded = encoded or encode_test_set(run)
  codes, labels = encoded["codes"], encoded["labels"]
  statistic = statistic_name(config.latent)
  name = f"{config.latent} {'CVAE' if config.conditional else 'VAE'}, {run.spec.prior} prior"
  written = []

  records = _train_records(run.workdir)
  if records:
    written.append(plots.training_curves(records, os.path.join(out_dir, "training_curves.png")))
  written.append(
      plots.latent_scatter(codes[:5000],
                           labels[:5000],
                           os.path.join(out_dir, "latent.png"),
                           title=latent_title(config, statistic, name),
                           axis_label=latent_statistic(config, statistic)))
  # Parameters the encoder does not predict (the shared Pareto scale) are constant: left out.
  predicted = {k: v for k, v in encoded["params"].items() if np.ptp(v) > 0}
  written.append(
      plots.parameter_histograms(
          predicted,
          os.path.join(out_dir, "posterior_parameters.png"),
          title=f"Encoder's posterior parameters over the test set ({name})"))
  if len(ds.input_shape) == 3:
    written += _image_pictures(run, out_dir, codes, name, statistic, seed)
    written += _report_pictures(run, out_dir, codes, labels, name, seed)
  if run.spec.sequential:
    written.append(
        sequence_eval.write_sequence_picture(os.path.join(out_dir, "sequences.png"), run.spec,
                                             run.params, ds, seed))
  return written


def _train_records(workdir: str) -> list[dict[str, float]]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  by_epoch = {}
  with open(path) as f:
    for line in f:
      m = json.loads(line)
      if m.get("split") == "train":
        by_epoch[m["epoch"]] = m  # a re-run epoch (after a resume) replaces the earlier line
  return [by_epoch[e] for e in sorted(by_epoch)]


def _image_pictures(run: Run, out_dir: str, codes: np.ndarray, name: str, statistic: str,
                    seed: int) -> list[str]:
  config, ds = run.config, run.ds
  decode = _decode_fn(run.spec)  # the one compile decode_pixels also uses
  pixels = lambda out: reporting._to_pixels(out, run.spec)[..., 0]
  classes = ds.num_classes if config.conditional else 1
  fixed_class = 3 % classes
  written = []

  # Traversal: 2-D latents as a z1 x z2 grid, wider ones one row per most active dimension;
  # values run over the 2.5%-97.5% quantiles of the test codes, the others at their median.
  quantiles = np.linspace(0.025, 0.975, 11)
  median = np.median(codes, 0)
  if codes.shape[1] == 2:
    q1, q2 = np.quantile(codes[:, 0], quantiles), np.quantile(codes[:, 1], quantiles[::-1])
    grid = np.stack(np.meshgrid(q1, q2), -1).reshape(-1, 2)
    row_labels = [f"{v:.2g}" for v in q2]
    rows = len(q2)
  else:
    dims = np.argsort(-codes.var(0))[:min(8, codes.shape[1])]
    grid = np.repeat(median[None], len(dims) * len(quantiles), 0)
    for r, d in enumerate(dims):
      grid[r * len(quantiles):(r + 1) * len(quantiles), d] = np.quantile(codes[:, d], quantiles)
    row_labels = [f"dim {d}" for d in dims]
    rows = len(dims)
  y = jnp.full((len(grid),), fixed_class, jnp.int32)
  images = pixels(decode(run.params, _decoder_input_from_statistic(run, grid), y))
  cond = f", class {fixed_class}" if config.conditional else ""
  written.append(
      plots.image_grid(
          images.reshape(rows, len(quantiles), *images.shape[1:]),
          os.path.join(out_dir, "traversal.png"),
          title=f"Latent traversal over test-code quantiles of {statistic} ({name}{cond})",
          row_labels=row_labels,
          col_labels=[f"{q:.0%}" for q in quantiles]))

  # Interpolations between encoded test digits, linear in the statistic's space.
  rng = np.random.default_rng(seed)
  pairs = rng.choice(len(codes), (8, 2), replace=False)
  t = np.linspace(0, 1, 10)
  path_codes = (codes[pairs[:, 0], None] * (1 - t[:, None]) +
                codes[pairs[:, 1], None] * t[:, None]).reshape(-1, codes.shape[1])
  y = jnp.repeat(jnp.asarray(ds.test_y[pairs[:, 0]]), len(t)) if config.conditional else None
  y = y if y is not None else jnp.zeros((len(path_codes),), jnp.int32)
  images = pixels(decode(run.params, _decoder_input_from_statistic(run, path_codes), y))
  written.append(
      plots.image_grid(images.reshape(len(pairs), len(t), *images.shape[1:]),
                       os.path.join(out_dir, "interpolations.png"),
                       title=f"Interpolations between encoded test digits ({name}" +
                       (", decoded with the first digit's label)" if config.conditional else ")"),
                       col_labels=[f"{v:.2g}" for v in t]))

  # Class-conditional samples: 10 prior draws per class (100 draws for an unconditional model).
  prior = jit(lambda p, y: vae.prior(run.spec, p, y, y.shape[0]))
  labels = jnp.repeat(jnp.arange(10) % classes, 10)
  p = prior(run.params, labels)
  keys = jax.random.split(jax.random.key(seed), len(labels))
  r, in_log = vae.draw(keys, p)
  images = pixels(decode(run.params, vae.decoder_input(r, in_log, run.spec.decode_log), labels))
  written.append(
      plots.image_grid(images.reshape(10, 10, *images.shape[1:]),
                       os.path.join(out_dir, "class_samples.png"),
                       title=f"Prior samples ({name})" +
                       (": one row per class" if config.conditional else ""),
                       row_labels=[str(c) for c in range(10)] if config.conditional else None))

  if config.conditional:
    # Style transfer: one test digit's posterior location decoded under every class.
    sources = rng.choice(len(codes), 8, replace=False)
    z = np.repeat(codes[sources], classes, 0)
    y = jnp.tile(jnp.arange(classes), len(sources))
    images = pixels(decode(run.params, _decoder_input_from_statistic(run, z), y))
    images = images.reshape(len(sources), classes, *images.shape[1:])
    originals = ds.test_x[sources][..., 0][:, None]
    written.append(
        plots.image_grid(np.concatenate([originals, images], 1),
                         os.path.join(out_dir, "style_transfer.png"),
                         title=f"Style transfer: a test digit's code under every class ({name})",
                         col_labels=["input"] + [str(c) for c in range(classes)]))
  return written


def _report_pictures(run: Run, out_dir: str, codes: np.ndarray, labels: np.ndarray, name: str,
                     seed: int) -> list[str]:
  """The report's figure 3 (``traversal_grid.png``) and figure 5's top rows
  (``interpolation_labels.png``), where they apply to the run."""
  written = []
  grid = traversal_grid(run)
  if grid is not None:
    under = "" if grid["label"] is None else f", under label {grid['label']}"
    written.append(
        plots.image_grid(
            grid["images"],
            os.path.join(out_dir, "traversal_grid.png"),
            title=f"Decoded z on a fixed grid over [-{GRID_LIMIT:g}, {GRID_LIMIT:g}]^2 "
            f"({name}{under})",
            row_labels=[f"{v:.2f}" for v in grid["z2"]],
            col_labels=[f"{v:.2f}" for v in grid["z1"]],
            xlabel="z[0]",
            ylabel="z[1]"))
  rows = interpolation_under_labels(run, codes, labels, seed)
  if rows is not None:
    (i, j), (a, b) = rows["ends"], rows["end_labels"]
    written.append(
        plots.image_grid(
            rows["images"],
            os.path.join(out_dir, "interpolation_labels.png"),
            title=f"One interpolation, test digit {i} (class {a}) to test digit {j} (class {b}),\n"
            f"decoded under labels {rows['rows'][0]} and {rows['rows'][1]} ({name})",
            row_labels=[f"label {c}" for c in rows["rows"]],
            col_labels=[f"{v:.2g}" for v in rows["t"]],
            xlabel="t (0: the first digit's code, 1: the second's)"))
  return written


# ------------------------------------------------------------------------------------------------
# Command line.


def evaluate_workdir(workdir: str,
                     *,
                     iwae_samples: int,
                     active_threshold: float = 0.01,
                     max_examples: int | None = None,
                     pictures: bool = True,
                     seed: int = 0) -> dict[str, Any]:
  """Evaluates one run and writes ``<workdir>/evaluation/`` (JSON, markdown, pictures)."""
  run = load_run(workdir)
  out_dir = os.path.join(workdir, "evaluation")
  os.makedirs(out_dir, exist_ok=True)
  print(f"Evaluating {workdir} at step {run.step} (IWAE k={iwae_samples})", flush=True)
  results = evaluate_run(run,
                         iwae_samples=iwae_samples,
                         active_threshold=active_threshold,
                         max_examples=max_examples,
                         seed=seed)
  with open(os.path.join(out_dir, "evaluation.json"), "w") as f:
    json.dump(results, f, indent=2)
  with open(os.path.join(out_dir, "evaluation.md"), "w") as f:
    f.write(markdown(results, f"Evaluation of {workdir}"))
  if pictures:
    results["pictures"] = write_pictures(run, out_dir, seed=seed)
  print(
      f"  ELBO {results['elbo']:.2f} ± {results['elbo_stderr']:.2f}  IWAE NLL "
      f"{results['nll_iwae']:.2f} ± {results['iwae_stderr']:.2f}  active "
      f"{results['active_units']}/{results['latent_dim']}  -> {out_dir}",
      flush=True)
  return results


def _define_flags() -> None:
  """Command-line flags, defined only when this module runs as the program (importing it from
  another absl program, or a notebook, must not claim flag names such as --workdir)."""
  flags.DEFINE_multi_string("workdir", [], "Run directories to evaluate.")
  flags.DEFINE_integer("iwae_samples", 1000, "Importance samples k of the IWAE bound.")
  flags.DEFINE_float("active_threshold", 0.01, "Activity threshold of a unit.")
  flags.DEFINE_integer("max_examples", None, "Evaluate the first N test examples.")
  flags.DEFINE_boolean("pictures", True, "Also write the pictures.")
  flags.DEFINE_string("summary", None, "Write a markdown table over all workdirs here.")
  flags.DEFINE_string("family_gallery", None,
                      "Write the latent-family gallery (samples against densities).")
  flags.DEFINE_integer("seed", 0, "Seed of the evaluation's draws.")


def main(argv):
  f = flags.FLAGS
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
  if not f.workdir and not f.family_gallery:
    raise app.UsageError("Give --workdir=<run directory> (repeatable) or --family_gallery=<png>.")
  if f.iwae_samples < 1:
    raise app.UsageError(f"--iwae_samples must be >= 1; got {f.iwae_samples}.")
  if f.family_gallery:
    os.makedirs(os.path.dirname(os.path.abspath(f.family_gallery)), exist_ok=True)
    path, plotted = plots.family_gallery(f.family_gallery)
    print(f"Wrote {path}: {', '.join(sorted({f for f, _ in plotted}))}")
  rows = []
  for workdir in f.workdir:
    rows.append((os.path.basename(os.path.normpath(workdir)),
                 evaluate_workdir(workdir,
                                  iwae_samples=f.iwae_samples,
                                  active_threshold=f.active_threshold,
                                  max_examples=f.max_examples,
                                  pictures=f.pictures,
                                  seed=f.seed)))
  if f.summary and rows:
    with open(f.summary, "w") as out:
      out.write(summary_table(rows))
    print(f"Wrote {f.summary}")


if __name__ == "__main__":
  _define_flags()
  app.run(main)
