"""Test-set evaluation scores one consistent input per example."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pareto_vae_jax import data as data_lib
from pareto_vae_jax import train

import tiny


def test_binarized_evaluation_scores_elbo_and_iwae_on_the_same_binary_draw():
  x = tiny.mnist_like(32)
  y = np.arange(32, dtype=np.int32) % 10
  ds = data_lib.Dataset(train_x=x, train_y=y, test_x=x, test_y=y, num_classes=10,
                        input_shape=(28, 28, 1), name="mnist", source="random pixels")
  binarized = tiny.config(dataset="mnist", likelihood="bernoulli", binarize=True)
  model = train.build_model(binarized, ds)
  params = train.init_state(model, train.make_optimizer(binarized), ds, binarized).params
  batch = {"x": jnp.asarray(x), "y": jnp.asarray(y), "index": jnp.arange(32)}
  key = jax.random.key(3)

  draw = train.observed(binarized, batch, key)
  assert set(np.unique(draw)) == {0.0, 1.0}
  # Evaluating the binarizing model on x must equal evaluating it, binarization off, on the
  # draw itself: the ELBO and the IWAE bound then both score the same binary image.
  plain = tiny.config(dataset="mnist", likelihood="bernoulli", binarize=False)
  actual = train.make_eval_fn(model, binarized, 4)(params, batch, key)
  desired = train.make_eval_fn(model, plain, 4)(params, batch | {"x": draw}, key)
  for name in ("elbo", "iwae", "recon", "kl"):
    np.testing.assert_allclose(actual[name], desired[name], rtol=1e-6, err_msg=name)
