"""Training: the state, the pure train step, chunks of steps as one compiled call, the loop.

What the model computes on a batch lives in ``vae``; this module only trains it.

``train_and_evaluate(config, workdir)`` is the one entry point; ``main.py`` and notebooks call it.

Randomness: the key of example ``i`` at step ``t`` is ``fold_in(fold_in(key, t), i)``, so a
draw depends on neither the device layout nor the batch it lands in. This is what makes one
device, a sharded ``jit`` and ``pmap`` produce the same update on the same global batch.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

import flax
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from pareto_vae_jax._xla_workaround import jit
from pareto_vae_jax import checkpoint as ckpt_lib
from pareto_vae_jax import checks
from pareto_vae_jax import chunks
from pareto_vae_jax import data as data_lib
from pareto_vae_jax import interrupts
from pareto_vae_jax import multihost
from pareto_vae_jax import objectives
from pareto_vae_jax import progress as progress_lib
from pareto_vae_jax import reporting
from pareto_vae_jax import sequence_eval
from pareto_vae_jax import vae

Array = jax.Array
Batch = dict[str, Array]

MODEL_KEYS = vae.MODEL_KEYS

# What TensorBoard's HParams tab lines runs up by: the fields that define the model, and those
# of its training.
HPARAM_KEYS = MODEL_KEYS + ("head_init_scale", "weight_init", "dtype", "beta", "warmup_epochs",
                            "free_bits", "batch_size", "num_epochs", "learning_rate", "lr_schedule",
                            "grad_clip", "iwae_samples")


@flax.struct.dataclass
class TrainState:
  step: Array
  params: Any
  opt_state: Any
  rng: Array  # typed key; the per-step key is fold_in(rng, step)


# ------------------------------------------------------------------------------------------------
# The train step.


def make_train_step(spec: vae.VAESpec,
                    tx: optax.GradientTransformation,
                    config,
                    *,
                    steps_per_epoch: int,
                    axis_name: str | None = None) -> Callable:
  """Builds the pure step ``(state, batch, key) -> (state, metrics)``.

  The config's training fields are read here, once; the step itself sees plain numbers.
  With ``axis_name`` (under ``jax.pmap``), gradients, metrics and the batch mean of the
  per-dimension KL (which free bits clamps) are averaged over that axis.
  """
  warmup_steps = float(config.warmup_epochs) * steps_per_epoch
  beta_max, free_bits = float(config.beta), float(config.free_bits)
  # K groups of the notes' eq. 14; 0 (or the latent size) is the per-dimension floor.
  groups = int(config.get("free_bits_groups", 0)) or None

  def pmean(x):
    return x if axis_name is None else jax.lax.pmean(x, axis_name)

  def loss_fn(params, batch, key, beta):
    terms = vae.terms(spec, params, batch, key)
    kl_dim_mean = pmean(jnp.mean(terms["kl_dim"], axis=0))
    kl_objective = jnp.sum(objectives.free_bits(kl_dim_mean[None], bits=free_bits, groups=groups))
    log_lik = jnp.mean(terms["log_lik"])
    # The loss is minus the (beta-weighted, free-bits) ELBO, times the likelihood's convention
    # (``VAESpec.loss_scale``); the reported ELBO has beta = 1 and the plain KL.
    loss = -spec.loss_scale * objectives.elbo(log_lik, kl_objective, beta=beta)
    kl = jnp.sum(kl_dim_mean)
    return loss, {
        "loss": loss,
        "recon": -log_lik,
        "kl": kl,
        "elbo": objectives.elbo(log_lik, kl),
        "beta": beta
    }

  def train_step(state: TrainState, batch: Batch, key: Array) -> tuple[TrainState, dict]:
    key = jax.random.fold_in(key, state.step)
    beta = beta_max * objectives.kl_warmup(state.step, warmup_steps=warmup_steps)
    grads, metrics = jax.grad(loss_fn, has_aux=True)(state.params, batch, key, beta)
    grads = pmean(grads)
    metrics = pmean(metrics)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics["grad_norm"] = optax.tree.norm(grads)
    metrics["param_norm"] = optax.tree.norm(params)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

  return train_step


def optimizer_stages(config) -> str:
  """The stages of `make_optimizer`'s chain, in words (stored with each checkpoint)."""
  decay = "weight decay (config.weight_decay > 0), " if config.get("weight_decay", 0.0) else ""
  schedule = config.get("lr_schedule", "constant")
  return f"global-norm clip, {decay}Adam" + ("" if schedule == "constant" else f" ({schedule} lr)")


# Burda et al. (2016), section 5: stage i = 0..7 trains 3**i epochs at 10**(-i / 7) times the
# base rate; 1 + 3 + ... + 3**7 = 3280 epochs in all. After the last stage the rate stays there.
BURDA_STAGES = 8


def burda_stage_ends(stages: int = BURDA_STAGES) -> list[int]:
  """The epochs after which each of Burda et al.'s stages ends: 1, 4, 13, 40, ..., 3280."""
  return [sum(3**j for j in range(i + 1)) for i in range(stages)]


def learning_rate(config, steps_per_epoch: int | None = None) -> optax.ScalarOrSchedule:
  """``config.learning_rate``, constant or under ``config.lr_schedule``.

  ``burda``: the rate of epoch e (0-based) is ``learning_rate * 10**(-i / 7)`` for the stage i
  whose epochs [3**0 + ... + 3**(i-1), 3**0 + ... + 3**i) hold e, up to i = 7 (Burda et al.,
  2016). It depends on the epoch only, not on ``num_epochs``: a run stopped at E epochs has had
  the first E epochs of the 3280-epoch protocol, and resuming it with more epochs continues it.
  """
  schedule = config.get("lr_schedule", "constant")
  if schedule == "constant":
    return config.learning_rate
  if schedule != "burda":
    raise ValueError(f"config.lr_schedule={schedule!r} is not one of "
                     f"{', '.join(checks.LR_SCHEDULES)}; "
                     "set --config.lr_schedule=constant (the default) or burda.")
  if not steps_per_epoch:
    raise ValueError("lr_schedule=burda counts epochs: pass steps_per_epoch to make_optimizer.")
  scale = 10**(-1 / 7)
  boundaries = {steps_per_epoch * end: scale for end in burda_stage_ends()[:-1]}
  return optax.piecewise_constant_schedule(config.learning_rate, boundaries)


def make_optimizer(config, steps_per_epoch: int | None = None) -> optax.GradientTransformation:
  """Adam after a global-norm clip, with ``config.weight_decay`` as PyTorch's ``Adam`` applies it.

  A nonzero ``weight_decay`` adds ``weight_decay * params`` to the clipped gradient before Adam's
  moments (the coupled L2 penalty of ``torch.optim.Adam(weight_decay=...)``, not AdamW's
  decoupled decay). At 0 the chain has no decay stage, so runs saved before the option existed
  resume with the same optimizer state. ``config.lr_schedule`` other than ``constant`` needs
  `steps_per_epoch` (`learning_rate`).
  """
  stages = [optax.clip_by_global_norm(config.grad_clip)]
  if config.get("weight_decay", 0.0):
    stages.append(optax.add_decayed_weights(config.weight_decay))
  return optax.chain(*stages, optax.adam(learning_rate(config, steps_per_epoch)))


def init_state(spec: vae.VAESpec, tx, config) -> TrainState:
  """Step 0: fresh parameters and optimizer state, and the run's key from ``config.seed``."""
  rng = jax.random.key(config.seed)
  # Initialization draws from its own stream, separate from the per-step fold_in(rng, step).
  params = spec.init(jax.random.split(rng)[1])
  return TrainState(step=jnp.zeros((), jnp.int32),
                    params=params,
                    opt_state=jit(tx.init)(params),
                    rng=rng)


def _run_steps(body: Callable, state, xs, straight_line: bool):
  """``lax.scan(body, state, xs)``, or with ``straight_line`` the same steps written out.

  XLA:CPU runs convolutions inside a while loop (what ``lax.scan`` lowers to, whatever its
  ``unroll``) about 40x slower than in straight-line code, the backward ones worst
  (docs/benchmarks.md; jax-ml/jax#12868), so conv models on CPU take the straight-line form.
  A scan unrolls only a one-step chunk: unrolled steps round differently from loop iterations,
  so longer unrolled chunks would make the result depend on where chunks are cut, and a
  resumed run cuts them elsewhere (tests/test_resume.py checks bit-identical resumes).
  """
  n = jax.tree.leaves(xs)[0].shape[0]
  if not straight_line:
    return jax.lax.scan(body, state, xs, unroll=n == 1)
  metrics = []
  for i in range(n):
    state, m = body(state, jax.tree.map(lambda a: a[i], xs))
    metrics.append(m)
  return state, jax.tree.map(lambda *ms: jnp.stack(ms), *metrics)


def make_chunk_runner(train_step: Callable, mesh: Mesh, *, straight_line: bool = False) -> Callable:
  """jit of n steps over ``indices[n, B]`` in one dispatch (a scan, or ``straight_line``).

  The data stays on device (replicated); each step gathers its batch and constrains it to be
  split over the mesh's ``data`` axis, so XLA runs data-parallel and all-reduces gradients.
  """
  batch_sharding = NamedSharding(mesh, P("data"))

  def run(state, data, indices):

    def body(state, idx):
      batch = {"x": data["x"][idx], "y": data["y"][idx], "index": idx}
      batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
      return train_step(state, batch, state.rng)

    return _run_steps(body, state, indices, straight_line)

  return jit(run, donate_argnums=0)


def make_fed_chunk_runner(train_step: Callable,
                          mesh: Mesh,
                          *,
                          straight_line: bool = False) -> Callable:
  """Like ``make_chunk_runner``, for several processes: ``run(state, batches)``.

  ``batches`` holds the chunk's global batches, ``[n, B, ...]`` split over the mesh's ``data``
  axis, each process having put only its own share (``multihost.global_batch``). The same
  per-example keys (``fold_in`` of the example index) make the update equal to the one process
  path's on the same global batch.
  """
  replicated = NamedSharding(mesh, P())

  def run(state, batches):
    return _run_steps(lambda s, b: train_step(s, b, s.rng), state, batches, straight_line)

  return jit(run, donate_argnums=0, out_shardings=replicated)


# ------------------------------------------------------------------------------------------------
# The loop.


def resolved(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config`` with ``prior = auto`` replaced by the prior it stands for (a copy; the caller's
  is left alone), so that config.json, the checkpoints' compatibility check and the run's
  metrics name the prior that was trained."""
  if config.get("prior", "standard") != "auto":
    return config
  config = ml_collections.ConfigDict(config.to_dict())
  config.prior = vae.resolve_prior(config)
  return config


def fit(config: ml_collections.ConfigDict, workdir: str):
  """Trains (or resumes) a (conditional) VAE to ``config.num_epochs``, checkpointing in ``workdir``.

  Resume order: the latest readable checkpoint in ``workdir`` (falling back to older ones if
  the latest is damaged); otherwise a fresh initialization from ``config.seed``. With several
  processes (``multihost``) every process calls this with the same config and work directory.

  Returns:
    ``(state, spec, ds)``: the trained state (parameters replicated on every device), the
    model's ``vae.VAESpec`` and the dataset.
  """
  checks.check_fields(config)  # every numeric field, before anything is created or read
  config = resolved(config)
  if "://" in workdir:
    raise ValueError(f"workdir={workdir!r} is a URL; the trainer writes through the local "
                     "filesystem. Mount the bucket on every host (e.g. gcsfuse, or an NFS / "
                     "Filestore share) and pass the mount point, e.g. --workdir=/mnt/runs/x.")
  ds = data_lib.load_dataset(config.dataset, seed=config.seed, data_dir=config.get("data_dir", ""))
  mesh = multihost.global_mesh()
  spec = checks.check_config(config, ds, mesh.size)
  os.makedirs(workdir, exist_ok=True)  # once the data and the config are known to be usable
  multihost.say(vae.describe_kl(spec))
  steps_per_epoch = len(ds.train_x) // config.batch_size
  tx = make_optimizer(config, steps_per_epoch)
  total_steps = steps_per_epoch * config.num_epochs
  state = init_state(spec, tx, config)
  if jax.process_count() > 1:  # restore into (and train from) arrays that span all processes
    state = multihost.replicate(jax.device_get(state), mesh)
  # What loading the model needs besides its config (``trained.load``, without the data).
  meta = {
      "config": config.to_dict(),
      "steps_per_epoch": steps_per_epoch,
      "input_shape": list(spec.input_shape),
      "num_classes": ds.num_classes,
      # The optimizer's stages: a saved optimizer state only restores into the same chain.
      "optimizer": optimizer_stages(config),
  }
  compat = tuple(f"config.{k}" for k in MODEL_KEYS) + ("optimizer",)

  checkpointer = ckpt_lib.Checkpointer(os.path.join(workdir, "checkpoints"),
                                       state,
                                       meta,
                                       model_keys=compat,
                                       max_to_keep=config.keep_checkpoints)
  try:
    restored = checkpointer.restored
    # The config as run, once the workdir's checkpoints are known to be of this model (else
    # the error above left everything as it was) and before training writes anything.
    if multihost.is_primary():
      reporting.write_config(workdir, config)
      multihost.say(reporting.format_config(config))
    if restored is not None:
      state, _, step = restored
      logging.info("Resumed from the checkpoint at step %d in %s.", step, workdir)
      multihost.say(f"Resumed from checkpoint at step {step} in {workdir}")
    if int(state.step) < total_steps:
      state = _train(config, ds, spec, tx, state, mesh, checkpointer, workdir, steps_per_epoch,
                     meta)
  finally:
    checkpointer.close()
  return state, spec, ds


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, float]:
  """Trains (``fit``) and evaluates on the test set; returns the test metrics.

  A run that already finished returns the metrics it saved in ``test_metrics.json``. Metrics,
  TensorBoard events, ``test_metrics.json`` and pictures are written by process 0 only.
  """
  config = resolved(config)
  state, spec, ds = fit(config, workdir)
  step = int(state.step)
  total_steps = len(ds.train_x) // config.batch_size * config.num_epochs
  finished = _finished_metrics(workdir, step)
  if finished is not None and step >= total_steps:
    multihost.say(f"The run in {workdir} already finished at step {step}; its test metrics are "
                  "in test_metrics.json (delete it to evaluate again).")
    return finished

  params = jax.device_get(state.params)
  eval_fn = vae.make_eval_fn(spec, config.iwae_samples)
  results = vae.evaluate(eval_fn,
                         params,
                         ds.test_x,
                         ds.test_y,
                         config.eval_batch_size,
                         vae.eval_key(config.seed),
                         progress=multihost.is_primary())
  if spec.sequential:  # accuracy, exact match, prior validity, ... (sequence_eval)
    results.update(
        sequence_eval.sequence_metrics(spec,
                                       params,
                                       ds,
                                       config.seed,
                                       batch_size=config.eval_batch_size))
  results["step"] = step
  results["finished"] = step >= total_steps
  if not multihost.is_primary():
    return results
  scalars = {k: v for k, v in results.items() if isinstance(v, float)}
  writer = reporting.MetricWriter(workdir)
  try:
    writer.write_scalars(step, scalars, "test")
    if results["finished"]:  # the run as one row of TensorBoard's HParams tab
      writer.write_hparams({k: config.get(k) for k in HPARAM_KEYS}, scalars, "test")
  finally:
    writer.close()
  if results["finished"]:
    if spec.sequential:
      sequence_eval.write_sequence_picture(os.path.join(workdir, "sequences.png"), spec, params, ds,
                                           config.seed)
    else:
      reporting.write_images(workdir, spec, params, ds, config.seed)
    # Last, and whole or not at all: its presence says every output of the run is written.
    reporting.write_json_atomic(os.path.join(workdir, "test_metrics.json"),
                                results | {"config": config.to_dict()})
  return results


def _finished_metrics(workdir: str, step: int) -> dict | None:
  """The saved test metrics of a run that finished at ``step``, if there are any.

  An unreadable ``test_metrics.json`` counts as absent (with a warning): the run is evaluated
  again, which rewrites it.
  """
  path = os.path.join(workdir, "test_metrics.json")
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      saved = json.load(f)
    if not isinstance(saved, dict):
      raise ValueError(f"a JSON {type(saved).__name__}, not an object")
  except (OSError, ValueError) as e:
    logging.warning("%s is unreadable (%s: %s); evaluating the run again.", path,
                    type(e).__name__, e)
    return None
  if saved.get("step") != step:
    return None
  saved.pop("config", None)
  return saved


def _train(config, ds, spec, tx, state, mesh, checkpointer, workdir, steps_per_epoch,
           meta) -> TrainState:
  """The epoch loop: compiled chunks of steps, checkpoints, a line and metrics per epoch."""
  total_steps = steps_per_epoch * config.num_epochs
  train_step = make_train_step(spec, tx, config, steps_per_epoch=steps_per_epoch)
  state, run_chunk = make_trainer_runner(config, ds, train_step, state, mesh)
  primary = multihost.is_primary()
  writer = reporting.MetricWriter(workdir, resume_step=int(state.step)) if primary else None
  # Chunks are a fraction of an epoch (``steps_per_dispatch``): the progress line, with the
  # run's ETA, moves inside every epoch; live on a terminal, else a line every 10 s.
  progress = progress_lib.Progress(total_steps,
                                   "train",
                                   initial=int(state.step),
                                   enabled=primary,
                                   unit="steps")
  window = interrupts.profile_window(config, int(state.step))
  preemption = interrupts.PreemptionWatch(checkpointer).install()
  try:
    step = int(state.step)
    epoch_start, epoch_metrics = time.time(), []
    batches = (None, None)  # (epoch, its batches of indices), drawn once per epoch
    while step < total_steps:
      if config.halt_after_steps and step >= config.halt_after_steps:
        break  # a simulated pre-emption, for tests; the checkpoint below is the resume point
      epoch, offset = divmod(step, steps_per_epoch)
      if batches[0] != epoch:
        # The order of an epoch depends on (seed, epoch) only, so a resumed run sees the same
        # one. Drawn once per epoch: with one-step chunks it would cost more than a step.
        order = data_lib.epoch_permutation(config.seed, epoch, len(ds.train_x))
        order = order[:steps_per_epoch * config.batch_size]
        batches = (epoch, order.reshape(steps_per_epoch, -1))
      end = chunks.chunk_end(config, step, steps_per_epoch, window)
      with interrupts.profiled(workdir, window, step, end, progress.say) as finish:
        state, metrics = run_chunk(state, batches[1][offset:end])
        metrics = jax.device_get(metrics)
        finish(state)
      _check_finite(metrics, step)
      epoch_metrics.append(metrics)
      step = int(state.step)
      progress.update(end - offset, loss=float(np.mean(metrics["loss"])))
      preempted = preemption.reached(step)
      if chunks.saves_after(config, step, steps_per_epoch) or preempted:
        checkpointer.save(step, state, meta | {"epoch": epoch, "offset": end})
      if preempted:
        checkpointer.wait_until_finished()
        progress.say(f"Pre-emption notice: saved a checkpoint at step {step} in {workdir}; "
                     "run the same command again to resume from it.")
        raise interrupts.Preempted(step)
      if end == steps_per_epoch:
        if writer is not None:  # process 0 reports
          _report_epoch(config, ds, spec, state, writer, progress, epoch, epoch_metrics,
                        time.time() - epoch_start, steps_per_epoch)
        epoch_start, epoch_metrics = time.time(), []
  finally:
    preemption.restore()
    progress.close()
    if writer is not None:
      writer.close()
  return state


def _check_finite(metrics: dict, step: int) -> None:
  """Raises naming the first step of the chunk (which starts at ``step``) that went non-finite."""
  finite = np.stack([np.isfinite(np.reshape(v, (len(v), -1))).all(-1) for v in metrics.values()])
  if not finite.all():
    first = int(np.argmin(finite.all(0)))  # the chunk's first step with a non-finite metric
    step += first
    bad = {
        k: float(np.ravel(v[first])[~np.isfinite(np.ravel(v[first]))][0])
        for k, v in metrics.items()
        if not np.isfinite(v[first]).all()
    }
    raise FloatingPointError(
        f"Non-finite training metrics at step {step}: {bad}. Lower --config.learning_rate, "
        "or start the posteriors narrower with --config.head_init_scale=0.01 (for inputs "
        "of large magnitude), or feed the decoder log z (--config.decoder_input=log).")


def _report_epoch(config, ds, spec, state, writer, progress, epoch: int, epoch_metrics: list,
                  elapsed: float, steps_per_epoch: int) -> None:
  """The epoch's line, its scalars and (every ``summary_every_epochs``) images and histograms."""
  step, total_steps = int(state.step), steps_per_epoch * config.num_epochs
  summary = {
      k: float(np.mean(np.concatenate([np.ravel(m[k]) for m in epoch_metrics])))
      for k in epoch_metrics[0]
  }
  steps_run = sum(len(m["loss"]) for m in epoch_metrics)
  rate = steps_run / max(elapsed, 1e-9)
  # After a mid-epoch resume the summary covers only the steps this process ran.
  partial = (f"  (last {steps_run} of {steps_per_epoch} steps: resumed mid-epoch)"
             if steps_run < steps_per_epoch else "")
  writer.write_scalars(step, {
      "epoch": epoch + 1,
      **summary, "steps_per_sec": rate,
      "steps_averaged": steps_run
  }, "train")
  every = config.get("summary_every_epochs", 1)
  if every and ((epoch + 1) % every == 0 or step >= total_steps):
    # Images and latent histograms in TensorBoard (host copies of the replicated params).
    reporting.write_tensorboard_summaries(writer, step, spec, jax.device_get(state.params), ds,
                                          config.seed)
  progress.say(f"epoch {epoch + 1}/{config.num_epochs}  {rate:6.1f} steps/s  ETA "
               f"{(total_steps - step) / rate:5.0f}s  loss {summary['loss']:.3f}  "
               f"recon {summary['recon']:.3f}  kl {summary['kl']:.3f}  "
               f"beta {summary['beta']:.3f}{partial}")


def make_trainer_runner(config, ds: data_lib.Dataset, train_step: Callable, state: TrainState,
                        mesh: Mesh) -> tuple[TrainState, Callable]:
  """``(state placed for training, run_chunk(state, indices[n, B]) -> (state, metrics))``.

  This is what the trainer's loop calls for every chunk of steps (benchmarks time it too).
  """
  if jax.process_count() == 1:
    # The training set lives on the devices; each step gathers its batch there.
    replicated = NamedSharding(mesh, P())
    state = jax.device_put(state, replicated)
    data = jax.device_put({"x": ds.train_x, "y": ds.train_y}, replicated)
    run_indices = make_chunk_runner(train_step,
                                    mesh,
                                    straight_line=chunks.uses_straight_line(config))
    return state, lambda state, idx: run_indices(state, data, jnp.asarray(idx))
  # Several processes: each puts only its own share of every global batch on its devices.
  run_fed = make_fed_chunk_runner(train_step, mesh, straight_line=chunks.uses_straight_line(config))
  sources = {"x": ds.train_x, "y": ds.train_y}
  return state, lambda state, idx: run_fed(state, multihost.global_batch(idx, sources, mesh))
