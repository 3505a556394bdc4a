r"""Prior holes (the guide, sections 2.2 and 6.3): where the prior puts mass that the aggregate
posterior does not, and what the decoder makes of draws from there.

For a (conditional) model with prior p(z | c) and encoder q(z | x, c), the aggregate posterior
of label c is q(z | c) = mean over the examples x of label c of q(z | x, c), estimated on
``num_reference`` training examples per label. A prior draw is *in a hole* when its log q(z | c)
is below the ``quantile`` (1 %) of log q(z | c) at draws from the aggregate posterior itself
(posterior draws of held-out test examples of that label), so a prior equal to the aggregate
posterior puts about ``quantile`` of its draws in holes; the excess measures the holes.
Densities are those the model's IWAE uses: of log z for the positive families (Pareto, ...),
the same space for prior and posterior draws.

The decodings are judged by an independent classifier (an MLP trained here on the training
digits): how often a decoded prior draw is read as its label, against decoded posterior draws
of test digits, and for the draws in holes against those outside.

    python -m pareto_vae_jax.holes --workdir=runs/a --workdir=runs/b --out=holes.json
"""

from __future__ import annotations

import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags, logging

from pareto_vae_jax import distributions as D
from pareto_vae_jax import evaluate, vae
from pareto_vae_jax._xla_workaround import jit

Array = jax.Array


def hole_fraction(log_q_prior: np.ndarray,
                  log_q_posterior: np.ndarray,
                  quantile: float = 0.01) -> tuple[float, float]:
  """(fraction of prior draws below the aggregate posterior's own ``quantile``, the threshold).

  Both arguments are log q(z | c) of the aggregate posterior: at prior draws and at draws from
  the aggregate posterior (held-out posterior draws)."""
  threshold = _threshold(log_q_posterior, quantile)
  return float(np.mean(np.asarray(log_q_prior, np.float64) < threshold)), threshold


def _threshold(log_q_posterior: np.ndarray, quantile: float) -> float:
  """The ``quantile`` of log q at aggregate-posterior draws. A draw outside every reference
  posterior's support (a Pareto's z below each x_q) has log q = -inf: it counts as the lowest
  value, and a prior draw there (log q = -inf too) is below any finite threshold."""
  lowest = np.finfo(np.float64).min / 2
  return float(np.quantile(np.maximum(np.asarray(log_q_posterior, np.float64), lowest), quantile))


@functools.cache
def _aggregate_fn(spec: vae.VAESpec):
  """(params, x_ref, y_ref, r) -> log q_agg(r) for each draw r [M]."""

  in_log = _in_log(spec)  # draws of a positive family are in log space (vae.draw)

  def log_q_agg(params, x_ref, y_ref, r):
    q = vae.encode(spec, params, x_ref, y_ref if spec.conditional else None)

    def one(z):  # log q(z | x_n) for every reference n, then the mean over n
      zs = jnp.broadcast_to(z, (x_ref.shape[0], z.shape[-1]))
      return jax.nn.logsumexp(vae.joint_log_prob(q, zs, in_log)) - math.log(x_ref.shape[0])

    return jax.lax.map(one, r, batch_size=64)

  return jit(log_q_agg)


def _in_log(spec: vae.VAESpec) -> bool:
  """Whether ``vae.draw`` gives this model's draws in log space (a positive family)."""
  return D.family_info(spec.latent).rsample_log is not None


@functools.cache
def _draw_fn(spec: vae.VAESpec):
  """(params, x or None, labels, key) -> (draws, decoded means): prior draws when x is None."""

  def prior_draws(params, labels, key):
    n = labels.shape[0]
    p = vae.prior(spec, params, labels if spec.conditional else None, n)
    r, in_log = vae.draw(jax.random.split(key, n), p)
    out = vae.decode(spec, params, vae.decoder_input(r, in_log, spec.decode_log),
                     labels if spec.conditional else None)
    return r, vae.LIKELIHOODS[spec.likelihood].mean(spec, out)

  def posterior_draws(params, x, labels, key):
    q = vae.encode(spec, params, x, labels if spec.conditional else None)
    r, in_log = vae.draw(jax.random.split(key, x.shape[0]), q)
    out = vae.decode(spec, params, vae.decoder_input(r, in_log, spec.decode_log),
                     labels if spec.conditional else None)
    return r, vae.LIKELIHOODS[spec.likelihood].mean(spec, out)

  return jit(prior_draws), jit(posterior_draws)


def train_classifier(x: np.ndarray,
                     y: np.ndarray,
                     num_classes: int,
                     *,
                     epochs: int = 3,
                     seed: int = 0):
  """A 784-256-C ReLU MLP (Adam 1e-3, batch 128): ``predict(images) -> class probabilities``."""
  rng = np.random.default_rng(seed)
  k1, k2 = jax.random.split(jax.random.key(seed))
  d = int(np.prod(x.shape[1:]))
  params = {
      "w1": jax.random.normal(k1, (d, 256)) * math.sqrt(2 / d),
      "b1": jnp.zeros(256),
      "w2": jax.random.normal(k2, (256, num_classes)) * math.sqrt(1 / 256),
      "b2": jnp.zeros(num_classes)
  }

  def logits(p, images):
    h = jax.nn.relu(images.reshape(images.shape[0], -1) @ p["w1"] + p["b1"])
    return h @ p["w2"] + p["b2"]

  tx = optax.adam(1e-3)
  opt = tx.init(params)

  @jit
  def step(p, opt, images, labels):
    loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(logits(p, images), labels
                                                                    ).mean()
    grads = jax.grad(loss)(p)
    updates, opt = tx.update(grads, opt, p)
    return optax.apply_updates(p, updates), opt

  for _ in range(epochs):
    order = rng.permutation(len(x))
    for i in range(0, len(x) - 127, 128):
      idx = order[i:i + 128]
      params, opt = step(params, opt, jnp.asarray(x[idx]), jnp.asarray(y[idx]))
  predict = jit(lambda images: jax.nn.softmax(logits(params, images)))
  return predict


def measure(run: evaluate.Run,
            predict,
            *,
            num_reference: int = 1000,
            num_draws: int = 500,
            quantile: float = 0.01,
            seed: int = 0) -> dict:
  """The hole fraction and the classifier's reading of prior and posterior decodings, pooled
  over the labels (one label for a plain VAE: the whole data).

  A prior draw outside the support of every reference posterior (log q_agg = -inf: a Pareto
  prior's draw below each posterior's learned scale x_q) is in a hole.
  """
  spec, params, ds = run.spec, run.params, run.ds
  prior_fn, posterior_fn = _draw_fn(spec)
  classes = ds.num_classes if spec.conditional else 1
  prior_ok, post_ok, hole_flags, zero_prior, zero_posterior = [], [], [], [], []
  key = jax.random.key(seed)
  for c in range(classes):
    take = lambda labels: (labels == c) if spec.conditional else np.ones(len(labels), bool)
    x_ref = ds.train_x[take(ds.train_y)][:num_reference]
    y_ref = np.full(len(x_ref), c, np.int32)
    x_test = ds.test_x[take(ds.test_y)][:num_draws]
    y_test = ds.test_y[take(ds.test_y)][:num_draws].astype(np.int32)
    labels = np.full(num_draws, c, np.int32)
    r_prior, img_prior = prior_fn(params, jnp.asarray(labels), jax.random.fold_in(key, 2 * c))
    r_post, img_post = posterior_fn(params, jnp.asarray(x_test), jnp.asarray(y_test),
                                    jax.random.fold_in(key, 2 * c + 1))
    agg = _aggregate_fn(spec)
    lp = np.asarray(agg(params, jnp.asarray(x_ref), jnp.asarray(y_ref), r_prior))
    lq = np.asarray(agg(params, jnp.asarray(x_ref), jnp.asarray(y_ref), r_post))
    threshold = _threshold(lq, quantile)  # per label: its own aggregate posterior
    hole_flags.append(lp.astype(np.float64) < threshold)
    zero_prior.append(np.isneginf(lp))
    zero_posterior.append(np.isneginf(lq))
    read_prior = np.asarray(predict(img_prior)).argmax(-1)
    read_post = np.asarray(predict(img_post)).argmax(-1)
    # A CVAE's decodings should read as their label; a VAE's prior decodings have none, so the
    # classifier's confidence stands in (max probability).
    if spec.conditional:
      prior_ok.append(read_prior == labels)
      post_ok.append(read_post == y_test)
    else:
      prior_ok.append(np.asarray(predict(img_prior)).max(-1))
      post_ok.append(np.asarray(predict(img_post)).max(-1))
  holes = np.concatenate(hole_flags)
  ok = np.concatenate(prior_ok)
  se = lambda v: float(np.std(v) / math.sqrt(len(v)))
  return {
      "hole_fraction": float(holes.mean()),
      "hole_fraction_stderr": se(holes.astype(float)),
      "quantile": quantile,
      # Draws outside every reference posterior's support (log q_agg = -inf), prior and held-out
      # posterior: where the latter is not small, the aggregate posterior is estimated too
      # coarsely to place a 1 % threshold, and the difference between the two says more.
      "zero_density_prior": float(np.concatenate(zero_prior).mean()),
      "zero_density_posterior": float(np.concatenate(zero_posterior).mean()),
      "quality_measure": "label accuracy" if spec.conditional else "classifier confidence",
      "prior_decodings": float(ok.mean()),
      "posterior_decodings": float(np.concatenate(post_ok).mean()),
      "prior_decodings_in_holes": float(ok[holes].mean()) if holes.any() else None,
      "prior_decodings_outside_holes": float(ok[~holes].mean()) if (~holes).any() else None,
      "num_prior_draws": int(len(holes)),
      "prior": spec.prior,
      "latent": spec.latent,
  }


def main(argv):
  del argv
  f = flags.FLAGS
  if not f["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs ~50 INFO lines per restore
  results = {}
  predict = None
  for workdir in f.workdir:
    run = evaluate.load_run(workdir)
    if predict is None:
      predict = train_classifier(run.ds.train_x, run.ds.train_y, run.ds.num_classes)
    results[workdir] = measure(run, predict, seed=f.seed)
    print(workdir, json.dumps(results[workdir]), flush=True)
  if f.out:
    with open(f.out, "w") as out:
      json.dump(results, out, indent=2)


if __name__ == "__main__":
  flags.DEFINE_multi_string("workdir", [], "Run directories (MNIST models).")
  flags.DEFINE_string("out", None, "Write the results as JSON here.")
  flags.DEFINE_integer("seed", 0, "Seed of the draws.")
  app.run(main)
