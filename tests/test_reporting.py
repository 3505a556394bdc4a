"""TensorBoard summaries of a run, read back from the event file: image grids and histograms for
every latent family, prior and (un)conditional model; the PNG grids; the writer's own checks."""

from __future__ import annotations

import io
import pathlib
import struct

import numpy as np
import pytest
from PIL import Image
from tensorboardX.proto import event_pb2

from pareto_vae_jax import data as data_lib
from pareto_vae_jax import distributions as D
from pareto_vae_jax import reporting, train
from pareto_vae_jax import vae

import tiny

PRIORS = ("standard", "learned", "vamp", "mixture")
NUM_TEST = 24


def _read_events(logdir: pathlib.Path) -> list[event_pb2.Event]:
  """Every event of the TFRecord files under ``logdir`` (length, crc, record, crc; the CRCs
  are not checked: the tensorboard package, whose reader would, is not a dependency)."""
  events = []
  for path in sorted(logdir.rglob("events.out.tfevents.*")):
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack_from("<Q", data, offset)
      events.append(event_pb2.Event.FromString(data[offset + 12:offset + 12 + length]))
      offset += 12 + length + 4
  return events


def _summaries(logdir: pathlib.Path) -> dict[str, tuple[int, object]]:
  """tag -> (step, the summary value) of the events under ``logdir``."""
  return {v.tag: (e.step, v) for e in _read_events(logdir) if e.HasField("summary")
          for v in e.summary.value}


def _mnist_shaped(num_test: int = NUM_TEST) -> data_lib.Dataset:
  x = tiny.mnist_like(num_test)
  y = np.arange(num_test, dtype=np.int32) % 10
  return data_lib.Dataset(train_x=x, train_y=y, test_x=x, test_y=y, num_classes=10,
                          input_shape=(28, 28, 1), name="mnist", source="random pixels")


def _model(ds, **overrides):
  config = tiny.config(dataset=ds.name, hidden=(16,), latent_dim=3, prior_components=2,
                       **overrides)
  model = vae.VAESpec.from_config(config, ds)
  params = train.init_state(model, train.make_optimizer(config), config).params
  return config, model, params


def _write(tmp_path, config, model, params, ds, step=7):
  writer = reporting.MetricWriter(str(tmp_path))
  try:
    reporting.write_tensorboard_summaries(writer, step, model, params, ds, config.seed)
  finally:
    writer.close()
  return _summaries(tmp_path / "tensorboard")


# Every family once, the priors and conditioning rotating among them so that each prior meets
# conditional and unconditional models.
CASES = [(family, PRIORS[i % 4], bool(i // 4 % 2)) for i, family in enumerate(D.family_names())]


@pytest.mark.parametrize("family, prior, conditional", CASES,
                         ids=[f"{f}-{p}-{'cvae' if c else 'vae'}" for f, p, c in CASES])
def test_summaries_hold_image_grids_and_latent_histograms(tmp_path, family, prior, conditional):
  ds = _mnist_shaped()
  config, model, params = _model(ds, latent=family, prior=prior, conditional=conditional,
                                 likelihood="bernoulli")
  summaries = _write(tmp_path, config, model, params, ds)

  z = "log_z" if D.family_info(family).rsample_log is not None else "z"
  predicted = [n for n in D.family_info(family).param_names
               if n not in D.family_info(family).latent_fixed
               and not (family == "pareto" and n == "scale")]  # the shared x_m
  expected = ({"images/reconstructions", "images/samples", f"latent/{z}", f"prior/{z}"}
              | {f"latent/{z}_dim{d}" for d in range(3)}
              | {f"posterior/{n}" for n in predicted})
  assert set(summaries) == expected
  assert all(step == 7 for step, _ in summaries.values())

  # Reconstructions: 2 pairs of rows (inputs, reconstructions) of 10 digits; samples: 10 per
  # class in a row per class, or one row.
  rows = 10 if conditional else 1
  for tag, (height, width) in (("images/reconstructions", (4 * 28, 10 * 28)),
                               ("images/samples", (rows * 28, 10 * 28))):
    image = summaries[tag][1].image
    assert (image.height, image.width) == (height, width), tag
    decoded = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)))
    assert decoded.shape[:2] == (height, width), tag

  # One value per test example and dimension; one per example for a single dimension.
  for tag, (_, value) in summaries.items():
    if tag.startswith("images/"):
      continue
    num = NUM_TEST if "_dim" in tag else NUM_TEST * 3
    assert value.histo.num == num, tag
    assert np.isfinite([value.histo.min, value.histo.max]).all(), tag


@pytest.fixture(scope="module")
def pareto_cvae():
  """A Pareto CVAE with a learned posterior scale on MNIST-shaped data: (ds, config, model,
  params)."""
  ds = _mnist_shaped()
  return (ds, *_model(ds, latent="pareto", pareto_posterior_scale="learned", conditional=True))


def test_histograms_are_the_values_of_latent_histograms(tmp_path, pareto_cvae):
  ds, config, model, params = pareto_cvae
  values = reporting.latent_histograms(model, params, ds, config.seed)
  # A learned Pareto scale is predicted (x_q >= x_m), so it gets a histogram.
  assert set(values) >= {"posterior/alpha", "posterior/scale", "latent/log_z", "prior/log_z"}
  assert values["posterior/scale"].min() >= config.pareto_scale
  # log z >= log x_q: every draw lies in its posterior's support.
  assert (values["latent/log_z"] >= np.log(values["posterior/scale"]) - 1e-6).all()
  np.testing.assert_array_equal(values["latent/log_z_dim1"], values["latent/log_z"][:, 1])

  summaries = _write(tmp_path, config, model, params, ds)
  for tag, v in values.items():
    histo = summaries[tag][1].histo
    assert histo.num == v.size, tag
    np.testing.assert_allclose([histo.min, histo.max, histo.sum], [v.min(), v.max(), v.sum()],
                               rtol=1e-5, err_msg=tag)
    assert sum(histo.bucket) == v.size, tag


def test_summaries_are_deterministic_given_the_seed(pareto_cvae):
  ds, config, model, params = pareto_cvae
  first = reporting.latent_histograms(model, params, ds, config.seed)
  second = reporting.latent_histograms(model, params, ds, config.seed)
  for tag in first:
    np.testing.assert_array_equal(first[tag], second[tag], err_msg=tag)
  grids = [reporting.image_grids(model, params, ds, config.seed) for _ in range(2)]
  for name in grids[0]:
    np.testing.assert_array_equal(grids[0][name], grids[1][name], err_msg=name)


def test_image_grids_are_in_the_unit_interval_and_shrink_for_a_small_test_split(pareto_cvae):
  ds, config, model, params = pareto_cvae
  noisy = config.copy_and_resolve_references()
  noisy.noise, noisy.noise_scale = "normal", 3.0  # encoder inputs far outside [0, 1]
  grids = reporting.image_grids(vae.VAESpec.from_config(noisy, ds), params, ds, noisy.seed)
  assert grids["reconstructions"].shape == (4 * 28, 10 * 28)
  for name, grid in grids.items():
    assert 0 <= grid.min() and grid.max() <= 1, name
  small = reporting.image_grids(model, params, _mnist_shaped(7), config.seed)
  assert small["reconstructions"].shape == (2 * 28, 7 * 28)  # one pair of rows of 7 digits


def test_write_images_keeps_its_png_files(tmp_path, pareto_cvae):
  ds, config, model, params = pareto_cvae
  reporting.write_images(str(tmp_path), model, params, ds, config.seed)
  for name in ("reconstructions.png", "samples.png"):
    assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_non_image_data_gets_histograms_only(tmp_path):
  ds = tiny.small_dataset("synthetic_lognormal", 64, 40)
  config, model, params = _model(ds, latent="gaussian", conditional=True)
  assert reporting.image_grids(model, params, ds, config.seed) == {}
  summaries = _write(tmp_path, config, model, params, ds)
  assert not any(tag.startswith("images/") for tag in summaries)
  assert summaries["latent/z"][1].histo.num == 40 * 3
  assert summaries["posterior/loc"][1].histo.num == 40 * 3


def test_write_image_accepts_gray_and_channel_grids_and_refuses_other_shapes(tmp_path):
  writer = reporting.MetricWriter(str(tmp_path))
  try:
    writer.write_image(1, "gray", np.linspace(0, 1, 6).reshape(2, 3))
    writer.write_image(1, "one_channel", np.full((2, 3, 1), 2.0))  # clipped to 1
    writer.write_image(1, "rgb", np.zeros((4, 5, 3)))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\).*\(2, 3, 2\)"):
      writer.write_image(1, "two_channels", np.zeros((2, 3, 2)))
  finally:
    writer.close()
  summaries = _summaries(tmp_path / "tensorboard")
  gray = np.asarray(Image.open(io.BytesIO(summaries["gray"][1].image.encoded_image_string)))
  np.testing.assert_array_equal(gray[..., 0], [[0, 51, 102], [153, 204, 255]])
  ones = np.asarray(Image.open(io.BytesIO(
      summaries["one_channel"][1].image.encoded_image_string)))
  assert (ones[..., :3] == 255).all()
  assert (summaries["rgb"][1].image.height, summaries["rgb"][1].image.width) == (4, 5)


def test_write_histogram_leaves_out_non_finite_values(tmp_path):
  writer = reporting.MetricWriter(str(tmp_path))
  try:
    writer.write_histogram(3, "h", np.array([[1.0, np.inf], [np.nan, 2.0]]))
    writer.write_histogram(3, "none_finite", np.array([np.nan]))
  finally:
    writer.close()
  summaries = _summaries(tmp_path / "tensorboard")
  assert summaries["h"][1].histo.num == 2 and summaries["h"][1].histo.max == 2.0
  assert "none_finite" not in summaries
