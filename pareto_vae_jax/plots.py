"""Figures for reports: training curves, latent scatters, image grids and density checks.

Every writer takes numpy arrays, writes one PNG at ``path`` and returns ``path``. Matplotlib
is imported inside the functions and each figure is rendered by the Agg canvas directly, so
importing this module needs no display and no writer changes the pyplot backend or state of a
caller's session (a notebook keeps its inline figures).
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Iterator, Mapping, Sequence

import jax
import numpy as np

from pareto_vae_jax import distributions as D

# Sizes in points at _DPI; chosen so that text stays legible when a figure is scaled down to
# the width of a page column.
_STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8.5,
    "figure.titlesize": 13,
}
_DPI = 120
_PANEL = (4.2, 3.2)  # inches per panel of a multi-panel figure
_BINS = 50  # histogram bins per panel

# Illustrative parameters for ``family_gallery``: a light, a moderate and a heavy tail (or
# width) per family. A family missing here is drawn at its standard prior only.
_GALLERY_SETTINGS: dict[str, tuple[tuple[float, ...], ...]] = {
    "gaussian": ((0.0, 1.0), (0.0, 0.3), (2.0, 1.0)),
    "lognormal": ((0.0, 0.25), (0.0, 0.5), (0.0, 1.0)),
    "pareto": ((0.8, 1.0), (1.5, 1.0), (3.0, 1.0)),
    "inverse_gaussian": ((1.0, 0.2), (1.0, 1.0), (1.0, 5.0)),
    "student_t": ((1.0, 0.0, 1.0), (3.0, 0.0, 1.0), (30.0, 0.0, 1.0)),
    "lomax": ((0.8, 1.0), (2.0, 1.0), (5.0, 1.0)),
    "weibull": ((0.5, 1.0), (1.0, 1.0), (3.0, 1.0)),
    "generalized_pareto": ((1.0, 0.1, 0.0), (1.0, 0.5, 0.0), (1.0, 1.0, 0.0)),
    "symmetric_pareto": ((0.0, 1.0, 1.0), (0.0, 2.0, 1.0), (0.0, 5.0, 1.0)),
}


@contextlib.contextmanager
def _figure(path: str, nrows: int, ncols: int,
            figsize: tuple[float, float]) -> Iterator[tuple[Any, np.ndarray]]:
  """Yields ``(fig, axes[nrows, ncols])`` and writes the figure to ``path`` on normal exit.

  The figure is drawn on its own Agg canvas without pyplot: no display is needed, the caller's
  pyplot backend and open figures are left alone, and nothing holds the figure once the
  function returns (pyplot's ``close`` has nothing to release). The file is written atomically
  (a temporary file beside it, then ``os.replace``): a reader, or a run killed while saving,
  sees the whole new picture or the old one, never a torn one.
  """
  import matplotlib
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  with matplotlib.rc_context(_STYLE):
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    yield fig, fig.subplots(nrows, ncols, squeeze=False)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.tmp-{os.getpid()}{ext}"  # same extension: savefig picks the format from it
    try:
      fig.savefig(tmp, dpi=_DPI, bbox_inches="tight")
      os.replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)


def _grid_shape(n: int, max_cols: int) -> tuple[int, int]:
  cols = min(n, max_cols)
  return math.ceil(n / cols), cols


def _log_x(ax, lo: float, hi: float) -> None:
  """A log x axis labelled with plain numbers (1, 2, 5, 10, ...) rather than 10^k."""
  from matplotlib import ticker
  ax.set_xscale("log")
  # Over less than three decades, 1-2-5 ticks keep at least a few labels on the axis; wider
  # ranges get one per decade so that labels never collide.
  subs = (1.0, 2.0, 5.0) if hi / lo < 1e3 else (1.0,)
  ax.xaxis.set_major_locator(ticker.LogLocator(subs=subs, numticks=12))
  ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
  ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def _legend_on_headroom(ax, data_top: float) -> None:
  """Raises the y limit so that the legend sits above the data instead of over it."""
  ax.set_ylim(0, 1.4 * data_top if data_top > 0 else 1.0)
  ax.legend(loc="upper right")


def training_curves(records: Sequence[Mapping[str, float]], path: str) -> str:
  """Reconstruction loss, KL and their ratio against epoch, in three panels side by side.

  Args:
    records: one dict per epoch with keys ``epoch``, ``recon`` and ``kl``, and optionally
      ``beta`` (drawn on a twin axis of the KL panel).
    path: where to write the PNG.

  Returns:
    ``path``.
  """
  if not records:
    raise ValueError("training_curves needs at least one epoch record; got an empty list.")
  for i, r in enumerate(records):
    missing = {"epoch", "recon", "kl"} - set(r)
    if missing:
      raise ValueError(f"training_curves: records[{i}] lacks {sorted(missing)}; every record needs "
                       "'epoch', 'recon' and 'kl'.")
  epoch, recon, kl = (
      np.array([r[k] for r in records], np.float64) for k in ("epoch", "recon", "kl"))
  # The ratio is undefined where the KL has collapsed to 0; leave a gap there.
  ratio = np.divide(recon, kl, out=np.full_like(recon, np.nan), where=kl > 0)
  with _figure(path, 1, 3, (3 * _PANEL[0], _PANEL[1])) as (fig, axes):
    ax_recon, ax_kl, ax_ratio = axes[0]
    ax_recon.plot(epoch, recon, "o-", ms=3, color="C0")
    ax_recon.set(title="Reconstruction loss", xlabel="epoch", ylabel="reconstruction loss (nats)")
    ax_kl.plot(epoch, kl, "o-", ms=3, color="C1", label="KL")
    ax_kl.set(title="KL divergence", xlabel="epoch", ylabel="KL(q(z|x) || p(z)) (nats)")
    if any("beta" in r for r in records):
      beta = np.array([r.get("beta", np.nan) for r in records], np.float64)
      ax_beta = ax_kl.twinx()
      ax_beta.plot(epoch, beta, "--", color="C7", label="beta")
      ax_beta.set_ylabel("beta (KL weight)")
      handles = ax_kl.get_legend_handles_labels()[0] + ax_beta.get_legend_handles_labels()[0]
      ax_kl.legend(handles=handles, loc="best")
    ax_ratio.plot(epoch, ratio, "o-", ms=3, color="C2")
    ax_ratio.set(title="Reconstruction / KL", xlabel="epoch", ylabel="recon / KL")
    for ax in axes[0]:
      ax.grid(alpha=0.3)
  return path


def pca_2d(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Projects codes onto their first two principal components.

  Codes with two columns are returned unchanged and codes with one column are padded with a
  zero column, so that callers can always draw a 2-D scatter.

  Args:
    codes: ``[N, D]`` array.

  Returns:
    ``(projected [N, 2], ratio [2])``. For ``D > 2`` the ratio is each component's share of
    the total variance; for ``D <= 2`` it is each column's share (0 for the padding).
  """
  codes = np.asarray(codes, np.float64)
  if codes.ndim != 2 or codes.shape[1] == 0:
    raise ValueError(f"pca_2d needs codes shaped [N, D] with D >= 1; got shape {codes.shape}.")
  centred = codes - codes.mean(axis=0)
  if codes.shape[1] <= 2:
    projected = np.pad(codes, ((0, 0), (0, 2 - codes.shape[1])))
    var = np.pad(centred.var(axis=0), (0, 2 - codes.shape[1]))
    total = var.sum()
    return projected, (var / total if total > 0 else np.zeros(2))
  _, s, vt = np.linalg.svd(centred, full_matrices=False)
  # SVD fixes each direction only up to sign: make the largest loading positive so that the
  # same codes always give the same picture.
  largest = np.argmax(np.abs(vt[:2]), axis=1)
  components = vt[:2] * np.sign(vt[[0, 1], largest])[:, None]
  var = s**2
  total = var.sum()
  return centred @ components.T, (var[:2] / total if total > 0 else np.zeros(2))


def latent_scatter(codes: np.ndarray,
                   labels: np.ndarray | None,
                   path: str,
                   *,
                   title: str,
                   axis_label: str = "z",
                   max_points: int = 5000) -> str:
  """2-D scatter of latent codes coloured by class.

  Codes wider than two are projected with ``pca_2d`` (computed on all codes) and the axes
  name the component and its share of the variance.

  Args:
    codes: ``[N, D]`` latent codes (e.g. posterior means over a test set).
    labels: ``[N]`` integer classes, or None for a single colour.
    path: where to write the PNG.
    title: figure title.
    axis_label: what the codes are, e.g. ``"z"`` or ``"log z"``.
    max_points: a random subset of at most this many points is drawn, in random order so
      that no class hides the others.

  Returns:
    ``path``.
  """
  codes = np.asarray(codes)
  if labels is not None:
    labels = np.asarray(labels).reshape(-1)
    if labels.shape[0] != codes.shape[0]:
      raise ValueError(f"latent_scatter: {labels.shape[0]} labels for {codes.shape[0]} codes.")
  projected, ratio = pca_2d(codes)
  if codes.shape[1] > 2:
    xlabel, ylabel = (f"PC{i + 1} of {axis_label} ({r:.0%} var)" for i, r in enumerate(ratio))
  elif codes.shape[1] == 2:
    xlabel, ylabel = f"{axis_label}[0]", f"{axis_label}[1]"
  else:
    xlabel, ylabel = f"{axis_label}[0]", "(1-D codes: no second axis)"
  order = np.random.default_rng(0).permutation(len(codes))[:max_points]
  with _figure(path, 1, 1, (5.6, 4.6)) as (fig, axes):
    ax = axes[0, 0]
    xy = projected[order]
    if labels is None:
      ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.5, linewidths=0)
    else:
      classes, index = np.unique(labels[order], return_inverse=True)
      if len(classes) <= 10:
        import matplotlib
        from matplotlib.lines import Line2D
        cmap = matplotlib.colormaps["tab10"]
        ax.scatter(xy[:, 0], xy[:, 1], c=cmap(index), s=4, alpha=0.6, linewidths=0)
        handles = [
            Line2D([], [], ls="", marker="o", color=cmap(i), label=str(c))
            for i, c in enumerate(classes)
        ]
        ax.legend(handles=handles,
                  title="class",
                  loc="upper left",
                  bbox_to_anchor=(1.01, 1),
                  borderaxespad=0)
      else:
        points = ax.scatter(xy[:, 0],
                            xy[:, 1],
                            c=labels[order],
                            cmap="viridis",
                            s=4,
                            alpha=0.6,
                            linewidths=0)
        fig.colorbar(points, ax=ax, label="class")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
  return path


def image_grid(images: np.ndarray,
               path: str,
               *,
               title: str,
               row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None,
               xlabel: str | None = None,
               ylabel: str | None = None,
               vmin: float = 0.0,
               vmax: float = 1.0) -> str:
  """An R x C grid of grayscale images with optional row and column labels.

  Used for latent traversals, interpolations, class-conditional samples and style transfer.
  Images are separated by a thin white gap so that dark backgrounds do not merge.

  Args:
    images: ``[R, C, H, W]`` or ``[R, C, H, W, 1]``.
    path: where to write the PNG.
    title: figure title.
    row_labels: R strings drawn left of the rows.
    col_labels: C strings drawn above the columns.
    xlabel: what the column labels are (e.g. ``"z[0]"``), drawn above them.
    ylabel: what the row labels are, drawn left of them.
    vmin: pixel value drawn black.
    vmax: pixel value drawn white.

  Returns:
    ``path``.
  """
  images = np.asarray(images, np.float64)
  if images.ndim == 5 and images.shape[-1] == 1:
    images = images[..., 0]
  if images.ndim != 4:
    raise ValueError(f"image_grid needs images shaped [R, C, H, W] or [R, C, H, W, 1]; got "
                     f"{images.shape}.")
  rows, cols, h, w = images.shape
  for name, labels, n in (("row_labels", row_labels, rows), ("col_labels", col_labels, cols)):
    if labels is not None and len(labels) != n:
      raise ValueError(f"image_grid: {len(labels)} {name} for {n} {name.split('_')[0]}s.")
  gap = max(1, round(0.06 * max(h, w)))
  # NaN gaps are drawn in the colormap's "bad" colour.
  padded = np.pad(images, ((0, 0), (0, 0), (0, gap), (0, gap)), constant_values=np.nan)
  grid = padded.transpose(0, 2, 1, 3).reshape(rows * (h + gap), cols * (w + gap))[:-gap, :-gap]
  cell = min(1.0, 12.0 / cols, 12.0 / rows)  # inches per image along its longer side
  scale = cell / max(h, w)
  import matplotlib
  with _figure(path, 1, 1,
               (cols * (w + gap) * scale + 1.5, rows * (h + gap) * scale + 0.8)) as (fig, axes):
    ax = axes[0, 0]
    ax.imshow(grid,
              cmap=matplotlib.colormaps["gray"].with_extremes(bad="white"),
              vmin=vmin,
              vmax=vmax,
              interpolation="nearest")
    ax.set_title(title)
    ax.set_xticks([c * (w + gap) + (w - 1) / 2 for c in range(cols)] if col_labels else [],
                  list(col_labels or []))
    ax.set_yticks([r * (h + gap) + (h - 1) / 2 for r in range(rows)] if row_labels else [],
                  list(row_labels or []))
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    if xlabel:
      ax.set_xlabel(xlabel)
    if ylabel:
      ax.set_ylabel(ylabel)
    ax.tick_params(length=0)
    if col_labels:
      # Roughly how many characters of tick text fit over one image.
      fits = cell * 72 / (0.6 * _STYLE["xtick.labelsize"])
      if max(len(str(c)) for c in col_labels) > fits:
        for label in ax.get_xticklabels():
          label.set(rotation=45, ha="left", rotation_mode="anchor")
    for spine in ax.spines.values():
      spine.set_visible(False)
  return path


def _bin_edges(grid: np.ndarray, log_x: bool, bins: int) -> np.ndarray:
  lo, hi = float(np.min(grid)), float(np.max(grid))
  if log_x and lo <= 0:
    raise ValueError(f"log_x needs a positive grid; its smallest value is {lo}.")
  return np.geomspace(lo, hi, bins + 1) if log_x else np.linspace(lo, hi, bins + 1)


def histogram_vs_density(samples: np.ndarray,
                         grid: np.ndarray,
                         density: np.ndarray,
                         log_x: bool,
                         *,
                         bins: int = _BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """A histogram of samples over the grid's range and the density it should match.

  Heights are normalised by the total number of samples, so they estimate the density itself
  even when some samples fall outside the range (``density=True`` would inflate them).

  Args:
    samples: 1-D draws of x.
    grid: 1-D increasing x values spanning the range to histogram.
    density: ``p(x)`` at ``grid``.
    log_x: bin logarithmically and compare densities of ``log x``, i.e. ``x p(x)``, which
      keeps heavy tails visible.
    bins: number of bins.

  Returns:
    ``(bin_centres, heights, density_at_centres)``, each ``[bins]``; centres are geometric
    for ``log_x``.
  """
  samples, grid, density = (np.asarray(a, np.float64).reshape(-1) for a in (samples, grid, density))
  edges = _bin_edges(grid, log_x, bins)
  counts, _ = np.histogram(samples[np.isfinite(samples)], bins=edges)
  if log_x:
    centres = np.sqrt(edges[:-1] * edges[1:])
    heights = counts / (samples.size * np.diff(np.log(edges)))
    # p_{log x}(log x) = x p(x); interpolated in log x, where the grid is evenly spread.
    at_centres = np.interp(np.log(centres), np.log(grid), grid * density)
  else:
    centres = 0.5 * (edges[:-1] + edges[1:])
    heights = counts / (samples.size * np.diff(edges))
    at_centres = np.interp(centres, grid, density)
  return centres, heights, at_centres


def _draw_density_panel(ax, panel: Mapping[str, Any]) -> None:
  samples = np.asarray(panel["samples"], np.float64).reshape(-1)
  grid = np.asarray(panel["grid"], np.float64).reshape(-1)
  density = np.asarray(panel["density"], np.float64).reshape(-1)
  log_x = bool(panel.get("log_x", False))
  edges = _bin_edges(grid, log_x, _BINS)
  _, heights, _ = histogram_vs_density(samples, grid, density, log_x)
  outside = np.mean(~((samples >= edges[0]) & (samples <= edges[-1])))
  curve = grid * density if log_x else density
  ax.stairs(heights,
            edges,
            fill=True,
            alpha=0.45,
            color="C0",
            label=f"{samples.size:,} samples ({outside:.1%} outside)")
  ax.plot(grid, curve, color="C3", lw=1.6, label="true density")
  if log_x:
    _log_x(ax, edges[0], edges[-1])
    ax.set(xlabel="x (log scale)", ylabel="density of log x  (x p(x))")
  else:
    ax.set(xlabel="x", ylabel="density p(x)")
  ax.set_title(panel["label"])
  ax.grid(alpha=0.3)
  _legend_on_headroom(ax, max(heights.max(), np.nanmax(curve)))


def density_panels(panels: Sequence[Mapping[str, Any]],
                   path: str,
                   *,
                   title: str,
                   ncols: int = 3) -> str:
  """Histograms of samples against their true density, one panel each.

  Args:
    panels: dicts with ``samples`` (1-D), ``grid`` (1-D x values), ``density`` (pdf on the
      grid), ``label`` (panel title) and optionally ``log_x`` (see ``histogram_vs_density``).
    path: where to write the PNG.
    title: figure title.
    ncols: panels per row.

  Returns:
    ``path``.
  """
  if not panels:
    raise ValueError("density_panels needs at least one panel.")
  rows, cols = _grid_shape(len(panels), ncols)
  with _figure(path, rows, cols, (cols * _PANEL[0], rows * _PANEL[1])) as (fig, axes):
    for ax, panel in zip(axes.flat, panels):
      _draw_density_panel(ax, panel)
    for ax in axes.flat[len(panels):]:
      ax.axis("off")
    fig.suptitle(title)
  return path


def family_gallery(path: str,
                   *,
                   key: jax.Array | None = None,
                   num_samples: int = 20_000) -> tuple[str, list[tuple[str, dict[str, float]]]]:
  """Samples against the true density for every registered family, one row per family.

  Each family is drawn at three illustrative parameter settings (``_GALLERY_SETTINGS``); a
  family registered later and not listed there is drawn at its standard prior. Positive
  families are shown on a log x axis. The plotted range runs from the 0.5% to the 99.5%
  sample quantile.

  Args:
    path: where to write the PNG.
    key: JAX PRNG key; ``jax.random.key(0)`` by default.
    num_samples: draws per setting.

  Returns:
    ``(path, plotted)`` where ``plotted`` lists ``(family name, {param: value})`` in the
    order drawn, row by row.
  """
  key = jax.random.key(0) if key is None else key
  rows = []
  for name in D.family_names():
    info = D.family_info(name)
    settings = _GALLERY_SETTINGS.get(name) or (tuple(
        float(p) for p in info.standard_prior(()).params),)
    rows.append((name, info, settings))
  ncols = max(len(settings) for _, _, settings in rows)
  plotted = []
  with _figure(path, len(rows), ncols, (ncols * _PANEL[0], len(rows) * _PANEL[1])) as (fig, axes):
    for r, (name, info, settings) in enumerate(rows):
      log_x = info.rsample_log is not None
      for c in range(ncols):
        if c >= len(settings):
          axes[r, c].axis("off")
          continue
        params = dict(zip(info.param_names, settings[c]))
        dist = info.cls(*settings[c])
        samples = np.asarray(D.rsample(jax.random.fold_in(key, len(plotted)), dist, num_samples))
        lo, hi = np.quantile(samples, [0.005, 0.995])
        grid = np.geomspace(lo, hi, 400) if log_x else np.linspace(lo, hi, 400)
        density = np.exp(np.asarray(D.log_prob(dist, grid)))
        label = f"{name}: " + ", ".join(f"{k}={v:g}" for k, v in params.items())
        _draw_density_panel(
            axes[r, c], dict(samples=samples, grid=grid, density=density, label=label, log_x=log_x))
        plotted.append((name, params))
    fig.suptitle("Samples (rsample) against the true density (exp log_prob)")
  return path, plotted


def _wants_log_axis(values: np.ndarray) -> bool:
  """Positive values spanning more than two decades are binned logarithmically."""
  return values.size > 0 and values.min() > 0 and values.max() / values.min() > 100


def parameter_histograms(params: Mapping[str, np.ndarray],
                         path: str,
                         *,
                         title: str,
                         ncols: int = 4) -> str:
  """Histograms of predicted distribution parameters (e.g. the encoder's over a test set).

  Args:
    params: name -> array of any shape; all values of each array go into one panel.
      Positive parameters whose max/min exceeds 100 get logarithmic bins and axis.
    path: where to write the PNG.
    title: figure title.
    ncols: panels per row.

  Returns:
    ``path``.
  """
  if not params:
    raise ValueError("parameter_histograms needs at least one parameter array.")
  rows, cols = _grid_shape(len(params), ncols)
  with _figure(path, rows, cols, (cols * _PANEL[0], rows * _PANEL[1])) as (fig, axes):
    for ax, (name, values) in zip(axes.flat, params.items()):
      values = np.asarray(values, np.float64).reshape(-1)
      finite = values[np.isfinite(values)]
      log_x = _wants_log_axis(finite)
      counts = np.zeros(1)
      if finite.size:
        bins = np.geomspace(finite.min(), finite.max(), _BINS + 1) if log_x else _BINS
        counts, _, _ = ax.hist(finite, bins=bins, color="C0", alpha=0.7)
        mean, median = finite.mean(), np.median(finite)
        ax.axvline(mean, color="C3", lw=1.5, label=f"mean {mean:.3g}")
        ax.axvline(median, color="C2", lw=1.5, ls="--", label=f"median {median:.3g}")
      if finite.size < values.size:
        ax.plot([], [], ls="", label=f"{values.size - finite.size:,} non-finite left out")
      if log_x:
        _log_x(ax, finite.min(), finite.max())
      ax.set(title=name, xlabel=f"{name} (log scale)" if log_x else name, ylabel="count")
      ax.grid(alpha=0.3)
      _legend_on_headroom(ax, counts.max())
    for ax in axes.flat[len(params):]:
      ax.axis("off")
    fig.suptitle(title)
  return path
