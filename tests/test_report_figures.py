"""The MNIST CVAE report's figures in the evaluation's picture step: figure 3 (a 2-D latent
decoded on a fixed [-3, 3] grid), figure 5's top rows (one interpolation under the labels 1 and
7) and the conditional latent scatter's title.

The models are freshly initialized, not trained: a random decoder still depends on z and on
the label, which is all that checking what is decoded where needs, and it keeps each test to
a few seconds.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from pareto_vae_jax import data as data_lib
from pareto_vae_jax import evaluate, plots, train, trained, vae

import tiny


def _run(tmp_path, **overrides) -> evaluate.Run:
  """An untrained MLP model on 64 random MNIST-shaped images, as ``evaluate.load_run`` gives."""
  x = tiny.mnist_like(64)
  y = np.arange(64, dtype=np.int32) % 10
  ds = data_lib.Dataset(train_x=x,
                        train_y=y,
                        test_x=x,
                        test_y=y,
                        num_classes=10,
                        input_shape=(28, 28, 1),
                        name="mnist",
                        source="random pixels")
  config = tiny.config(**({
      "dataset": "mnist",
      "likelihood": "bernoulli",
      "latent": "gaussian",
      "conditional": True,
      "latent_dim": 2
  } | overrides))
  spec = vae.VAESpec.from_config(config, ds)
  params = train.init_state(spec, train.make_optimizer(config), config).params
  return evaluate.Run(workdir=str(tmp_path),
                      config=config,
                      spec=spec,
                      params=params,
                      ds=ds,
                      step=0,
                      steps_per_epoch=1)


def _model(run: evaluate.Run) -> trained.TrainedVAE:
  return trained.TrainedVAE(spec=run.spec,
                            params=run.params,
                            config=run.config,
                            step=0,
                            workdir=run.workdir)


@pytest.fixture
def drawn(monkeypatch):
  """Records every ``image_grid`` and ``latent_scatter`` call by file name, rendering none."""
  calls = {}

  def image_grid(images, path, **kwargs):
    calls[os.path.basename(path)] = dict(images=np.asarray(images), **kwargs)
    return path

  monkeypatch.setattr(plots, "image_grid", image_grid)

  def latent_scatter(codes, labels, path, **kwargs):
    calls[os.path.basename(path)] = dict(codes=np.asarray(codes), labels=labels, **kwargs)
    return path

  monkeypatch.setattr(plots, "latent_scatter", latent_scatter)
  monkeypatch.setattr(plots, "parameter_histograms", lambda params, path, **kw: path)
  return calls


def _names(paths):
  return {os.path.basename(p) for p in paths}


def test_fixed_grid_spans_minus_three_to_three_in_reading_order():
  z, z1, z2 = evaluate.fixed_grid()
  np.testing.assert_array_equal(z1, np.linspace(-3, 3, 15))
  np.testing.assert_array_equal(z2, np.linspace(-3, 3, 15)[::-1])  # top row: z[1] = +3
  grid = z.reshape(15, 15, 2)
  np.testing.assert_array_equal(grid[..., 0], np.broadcast_to(z1, (15, 15)))
  np.testing.assert_array_equal(grid[..., 1], np.broadcast_to(z2[:, None], (15, 15)))


@pytest.mark.parametrize("conditional", [False, True])
def test_grid_tiles_are_the_decoder_at_the_z_values_their_labels_name(tmp_path, drawn, conditional):
  run = _run(tmp_path, conditional=conditional)
  written = evaluate.write_pictures(run, str(tmp_path / "pictures"))
  assert "traversal_grid.png" in _names(written)
  call = drawn["traversal_grid.png"]
  images = call["images"]
  assert images.shape == (15, 15, 28, 28)
  z1 = np.array([float(v) for v in call["col_labels"]])
  z2 = np.array([float(v) for v in call["row_labels"]])
  # The labels name the grid's values (to their two printed decimals) ...
  np.testing.assert_allclose(z1, np.linspace(-3, 3, 15), atol=0.006)
  np.testing.assert_allclose(z2, np.linspace(-3, 3, 15)[::-1], atol=0.006)
  assert (call["xlabel"], call["ylabel"]) == ("z[0]", "z[1]")
  # ... and each tile is the model's decoding at its row's z[1] and its column's z[0].
  exact = np.linspace(-3, 3, 15)
  r, c = np.meshgrid(np.arange(15), np.arange(15), indexing="ij")
  z = np.stack([exact[c.ravel()], exact[::-1][r.ravel()]], -1)
  labels = np.zeros(len(z), np.int32) if conditional else None
  expected = np.asarray(_model(run).decode(z, labels))[..., 0].reshape(15, 15, 28, 28)
  np.testing.assert_allclose(images, expected, atol=1e-6)
  assert np.ptp(images[0, 0] - images[-1, -1]) > 0.01  # the decoder does depend on z
  assert ("under label 0" in call["title"]) == conditional


def test_label_rows_decode_the_same_codes_under_labels_1_and_7(tmp_path, drawn):
  run = _run(tmp_path)
  encoded = evaluate.encode_test_set(run)
  written = evaluate.write_pictures(run, str(tmp_path / "pictures"), encoded=encoded, seed=3)
  assert "interpolation_labels.png" in _names(written)
  call = drawn["interpolation_labels.png"]
  assert call["row_labels"] == ["label 1", "label 7"]
  images = call["images"]
  assert images.shape == (2, 10, 28, 28)
  # The same path of codes, between two test digits' codes, under each row's label.
  rows = evaluate.interpolation_under_labels(run, encoded["codes"], encoded["labels"], seed=3)
  i, j = rows["ends"]
  t = np.linspace(0, 1, 10)[:, None]
  path = encoded["codes"][i] * (1 - t) + encoded["codes"][j] * t
  np.testing.assert_allclose(rows["path"], path, rtol=1e-6)
  assert f"test digit {i} (class {i % 10})" in call["title"]
  model = _model(run)
  for row, label in enumerate((1, 7)):
    expected = np.asarray(model.decode(path, np.full(10, label)))[..., 0]
    np.testing.assert_allclose(images[row], expected, atol=1e-6)
  assert np.abs(images[0] - images[1]).max() > 0.01  # the label does change the pictures


def test_the_conditional_latent_scatter_says_the_label_carries_the_class(tmp_path, drawn):
  run = _run(tmp_path)
  encoded = evaluate.encode_test_set(run)
  evaluate.write_pictures(run, str(tmp_path / "pictures"), encoded=encoded)
  # latent.png is already the report's CVAE latent: the posterior means of the test digits
  # (encoded with their labels), coloured by class; its title and axes now say so.
  call = drawn["latent.png"]
  np.testing.assert_array_equal(call["codes"], encoded["codes"])
  np.testing.assert_array_equal(call["labels"], run.ds.test_y)
  assert "E[z | x, y]" in call["title"] and "the label carries the class" in call["title"]
  assert call["axis_label"] == "E[z | x, y]"
  plain = _run(tmp_path, conditional=False).config
  assert evaluate.latent_title(plain, "E[z | x]",
                               "gaussian VAE") == ("Test codes E[z | x], by class (gaussian VAE)")
  assert evaluate.latent_statistic(plain, "E[log z | x]") == "E[log z | x]"
  assert evaluate.latent_statistic(run.config, "E[log z | x]") == "E[log z | x, y]"


@pytest.mark.parametrize("overrides, reason", [
    ({
        "latent": "pareto"
    }, "positive"),
    ({
        "latent": "lognormal"
    }, "positive"),
    ({
        "latent_dim": 4
    }, "4-D"),
])
def test_the_grid_is_skipped_off_the_real_line_and_off_two_dimensions(tmp_path, drawn, overrides,
                                                                      reason):
  run = _run(tmp_path, **overrides)
  assert reason in evaluate.traversal_grid_skip_reason(run.config)
  names = _names(evaluate.write_pictures(run, str(tmp_path / "pictures")))
  # The quantile traversal stays; figure 5's rows need only a conditional model.
  assert "traversal_grid.png" not in names and "traversal.png" in names
  assert "interpolation_labels.png" in names


def test_an_unconditional_model_has_no_label_rows(tmp_path, drawn):
  names = _names(
      evaluate.write_pictures(_run(tmp_path, conditional=False), str(tmp_path / "pictures")))
  assert "traversal_grid.png" in names and "interpolation_labels.png" not in names
  assert "style_transfer.png" not in names


def test_the_new_pictures_are_written_as_pngs_and_no_temporary_file_is_left(tmp_path):
  run = _run(tmp_path)
  out = tmp_path / "pictures"
  written = evaluate.write_pictures(run, str(out))
  assert {"traversal_grid.png", "interpolation_labels.png", "latent.png"} <= _names(written)
  for path in written:
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n", path
  assert sorted(os.listdir(out)) == sorted(_names(written))
