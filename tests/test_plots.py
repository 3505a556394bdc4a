"""Report figures: PCA and histogram math against references, and the layout of each PNG."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
from scipy import stats

import pareto_vae_jax as pvj
from pareto_vae_jax import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path) -> np.ndarray:
  """The PNG's RGB pixels in [0, 1], after checking the file really is a PNG."""
  with open(path, "rb") as f:
    assert f.read(8) == PNG_SIGNATURE
  return matplotlib.image.imread(path)[..., :3]


def aspect(path) -> float:
  """Width over height of the written image."""
  h, w = read_png(path).shape[:2]
  return w / h


def test_pca_2d_recovers_variance_ratios_and_leading_column_of_a_rotated_sample():
  rng = np.random.default_rng(0)
  independent = rng.normal(size=(20_000, 3)) * np.sqrt([9.0, 4.0, 0.01])
  rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
  projected, ratio = plots.pca_2d(independent @ rotation.T + 5.0)
  np.testing.assert_allclose(ratio, [9 / 13.01, 4 / 13.01], rtol=0.05)
  for k in range(2):
    assert abs(np.corrcoef(projected[:, k], independent[:, k])[0, 1]) > 0.99


def test_pca_2d_keeps_two_columns_and_pads_one_with_zeros():
  rng = np.random.default_rng(1)
  codes = rng.normal(size=(500, 2)) * [3.0, 1.0]
  projected, ratio = plots.pca_2d(codes)
  np.testing.assert_array_equal(projected, codes)
  var = codes.var(axis=0)
  np.testing.assert_allclose(ratio, var / var.sum())
  projected, ratio = plots.pca_2d(codes[:, :1])
  np.testing.assert_array_equal(projected, np.c_[codes[:, 0], np.zeros(500)])
  np.testing.assert_array_equal(ratio, [1.0, 0.0])


def test_histogram_matches_the_normal_pdf_on_central_bins():
  samples = np.random.default_rng(2).normal(size=200_000)
  grid = np.linspace(-4, 4, 801)
  centres, heights, at_centres = plots.histogram_vs_density(samples, grid, stats.norm.pdf(grid),
                                                            log_x=False)
  central = np.abs(centres) < 1.5  # >= 4,000 samples per bin: 1.6% standard error
  np.testing.assert_allclose(heights[central], stats.norm.pdf(centres[central]), rtol=0.06)
  np.testing.assert_allclose(at_centres, stats.norm.pdf(centres), rtol=1e-3)


def test_log_x_histogram_matches_x_times_the_pareto_pdf():
  pareto = stats.pareto(b=1.5)
  samples = pareto.rvs(200_000, random_state=3)
  grid = np.geomspace(1.0, 1e3, 801)
  centres, heights, at_centres = plots.histogram_vs_density(samples, grid, pareto.pdf(grid),
                                                            log_x=True)
  reference = centres * pareto.pdf(centres)  # density of log x
  np.testing.assert_allclose(at_centres, reference, rtol=1e-3)
  # The first two log-decades hold >= 4,000 samples per bin.
  busy = centres < 10.0
  assert busy.sum() >= 15
  np.testing.assert_allclose(heights[busy], reference[busy], rtol=0.06)


def test_histogram_heights_keep_mass_outside_the_range_out():
  samples = np.random.default_rng(4).uniform(0, 2, size=100_000)
  grid = np.linspace(0, 1, 11)
  _, heights, _ = plots.histogram_vs_density(samples, grid, np.full(11, 0.5), log_x=False,
                                             bins=10)
  # Half the samples lie beyond the grid: the bars must integrate to 1/2, not to 1.
  np.testing.assert_allclose(np.sum(heights * 0.1), 0.5, rtol=0.01)
  np.testing.assert_allclose(heights, 0.5, rtol=0.06)  # 5,000 samples per bin: 1.4% error


def test_training_curves_draws_three_panels_side_by_side(tmp_path):
  records = [dict(epoch=e, recon=100.0 / e + 90, kl=5.0 + e, beta=min(1.0, e / 5))
             for e in range(1, 11)]
  with_beta = plots.training_curves(records, str(tmp_path / "beta.png"))
  without = plots.training_curves([{k: r[k] for k in ("epoch", "recon", "kl")} for r in records],
                                  str(tmp_path / "plain.png"))
  for path in (with_beta, without):
    assert 2.5 < aspect(path) < 5.0


def test_training_curves_names_missing_keys(tmp_path):
  with pytest.raises(ValueError, match="records\\[1\\] lacks \\['kl'\\]"):
    plots.training_curves([dict(epoch=1, recon=1.0, kl=1.0), dict(epoch=2, recon=1.0)],
                          str(tmp_path / "x.png"))


def test_latent_scatter_colours_each_class_with_its_tab10_colour(tmp_path):
  rng = np.random.default_rng(5)
  labels = rng.integers(0, 3, 3000)
  codes = rng.normal(size=(3000, 6)) + labels[:, None]
  pixels = read_png(plots.latent_scatter(codes, labels, str(tmp_path / "z.png"), title="codes"))
  tab10 = matplotlib.colormaps["tab10"].colors

  def present(colour):
    return (np.abs(pixels - np.asarray(colour)).max(axis=-1) < 0.02).sum() > 20

  assert all(present(tab10[k]) for k in range(3))
  assert not present(tab10[3])  # red: a fourth class would have it


def test_image_grid_draws_each_image_at_its_cell_with_its_aspect(tmp_path):
  h, w = 8, 12
  black = np.zeros((2, 3, h, w, 1))
  one_white = black.copy()
  one_white[1, 2] = 1.0
  kw = dict(title="grid", row_labels=["a", "b"], col_labels=["x", "y", "z"])
  before = read_png(plots.image_grid(black, str(tmp_path / "black.png"), **kw))
  after = read_png(plots.image_grid(one_white, str(tmp_path / "white.png"), **kw))
  assert before.shape == after.shape
  rows, cols = np.nonzero(np.abs(after - before).max(axis=-1) > 0.5)
  assert rows.size > 0
  box_h, box_w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
  # The changed pixels fill one rectangle of the image's aspect ...
  assert rows.size > 0.9 * box_h * box_w
  np.testing.assert_allclose(box_h / box_w, h / w, rtol=0.1)
  # ... about a sixth of the grid, in its bottom-right cell.
  assert 0.25 * before.shape[1] < box_w < 0.4 * before.shape[1]
  assert rows.mean() > 0.5 * before.shape[0] and cols.mean() > 0.6 * before.shape[1]


def test_image_grid_rejects_labels_of_the_wrong_length(tmp_path):
  with pytest.raises(ValueError, match="2 row_labels for 3 rows"):
    plots.image_grid(np.zeros((3, 2, 4, 4)), str(tmp_path / "x.png"), title="t",
                     row_labels=["a", "b"])


def test_density_panels_draws_one_panel_per_entry(tmp_path):
  rng = np.random.default_rng(6)
  grid = np.geomspace(0.1, 10, 200)
  panel = dict(samples=rng.lognormal(size=5000), grid=grid,
               density=stats.lognorm(s=1).pdf(grid), label="LogNormal(0, 1)", log_x=True)
  one = aspect(plots.density_panels([panel], str(tmp_path / "one.png"), title="t"))
  two = aspect(plots.density_panels([panel, panel], str(tmp_path / "two.png"), title="t"))
  np.testing.assert_allclose(two / one, 2.0, rtol=0.15)


def test_family_gallery_draws_one_row_per_registered_family(tmp_path):
  path, plotted = plots.family_gallery(str(tmp_path / "gallery.png"), num_samples=2000)
  names = [name for name, _ in plotted]
  assert list(dict.fromkeys(names)) == list(pvj.family_names())
  for name, params in plotted:
    info = pvj.family_info(name)
    assert tuple(params) == info.param_names
    info.cls(*params.values())  # the drawn settings are valid parameters
  assert all(names.count(name) == 3 for name in pvj.family_names())
  # Rows of three panels of 4.2 x 3.2 inches, one row per family.
  expected = 3 * 4.2 / (len(pvj.family_names()) * 3.2)
  np.testing.assert_allclose(aspect(path), expected, rtol=0.2)


def test_parameter_histograms_draws_one_panel_per_parameter(tmp_path):
  rng = np.random.default_rng(7)
  params = dict(alpha=np.exp(rng.normal(0, 3, (200, 4))), scale=rng.uniform(0.5, 2, (200, 4)),
                loc=rng.normal(size=(200, 4)))
  one = aspect(plots.parameter_histograms(dict(loc=params["loc"]), str(tmp_path / "1.png"),
                                          title="t"))
  three = aspect(plots.parameter_histograms(params, str(tmp_path / "3.png"), title="t"))
  np.testing.assert_allclose(three / one, 3.0, rtol=0.15)


def test_only_positive_parameters_spanning_two_decades_get_a_log_axis():
  assert plots._wants_log_axis(np.array([0.01, 1.0, 5.0]))
  assert not plots._wants_log_axis(np.array([0.5, 1.0, 40.0]))
  assert not plots._wants_log_axis(np.array([-1.0, 1.0, 1000.0]))
  assert not plots._wants_log_axis(np.array([]))
