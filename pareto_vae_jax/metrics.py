"""Evaluation metrics for learned latent codes: tail index, active units, MI and MIG.

They test three claims about Pareto latents against the other families: that the codes recover
the tail index of heavy-tailed generating factors (``hill_tail_index``), keep more dimensions in
use (``active_units``), and are more disentangled (``mig``).

Numpy only, on host arrays: the inputs are codes gathered over a dataset, not traced values.
Information is in nats.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ArrayLike = npt.ArrayLike


def _finite(values: ArrayLike, name: str, fn_name: str, ndims: tuple[int, ...]) -> np.ndarray:
  """``values`` as an array with an allowed number of axes and finite entries, else ValueError."""
  values = np.asarray(values)
  if values.ndim not in ndims:
    raise ValueError(f"{fn_name}: {name} must have {' or '.join(map(str, ndims))} axes, got shape "
                     f"{values.shape}. Pass one row per example, e.g. codes of shape [N, D].")
  if values.dtype.kind not in "biuf" or not np.isfinite(values).all():
    raise ValueError(
        f"{fn_name}: {name} must be finite numbers; drop or repair NaN/inf entries (for "
        "Pareto codes that overflow, sample in log space with rsample_log) before evaluating.")
  return values


def hill_estimator(x: ArrayLike, k: int) -> tuple[float, float]:
  """Hill estimator of the tail index ``alpha`` from the ``k`` largest values of a sample.

  For a tail ``P(X > x) ~ C x^-alpha`` the log-excesses ``log X_(i) - log X_(k+1)`` of the top
  ``k`` order statistics are about Exp(``alpha``), so ``alpha`` is one over their mean; it is the
  maximum-likelihood estimate of a Pareto tail above the threshold ``X_(k+1)``. Only positive
  values count, since the estimator works with logs; it is scale- but not location-invariant.

  Args:
    x: 1-D sample.
    k: number of upper order statistics used, ``>= 1``. A larger ``k`` lowers the variance but
      reaches into the body of the distribution, which biases the estimate when the body is not
      Pareto.

  Returns:
    ``(alpha_hat, stderr)``: ``alpha_hat = 1 / mean(log X_(i) - log X_(k+1))`` over the top
    ``k``, and its asymptotic standard error ``alpha_hat / sqrt(k)``
    (``sqrt(k) (alpha_hat - alpha) -> N(0, alpha^2)`` for a Pareto tail), which omits that bias.

  Raises:
    ValueError: if ``x`` is not a finite 1-D sample, ``k < 1``, ``x`` has fewer than ``k + 1``
      positive values, or its ``k + 1`` largest values are all equal.

  References:
    Hill (1975), A simple general approach to inference about the tail of a distribution,
    Ann. Statist. 3(5).

  Example:
    >>> import numpy as np
    >>> from pareto_vae_jax import metrics
    >>> x = np.random.default_rng(0).pareto(3.0, 10_000) + 1  # Pareto type I, alpha = 3
    >>> alpha_hat, stderr = metrics.hill_estimator(x, 500)
    >>> abs(alpha_hat - 3.0) < 3 * stderr
    True
  """
  x = _finite(x, "x", "hill_estimator", (1,))
  if int(k) != k or k < 1:
    raise ValueError(f"hill_estimator: k must be a positive integer, got {k}.")
  k = int(k)
  positive = x[x > 0].astype(np.float64)
  if positive.size < k + 1:
    raise ValueError(
        f"hill_estimator: needs at least k + 1 = {k + 1} positive values, got {positive.size} "
        f"of {x.size}. Lower k or pass a larger sample; for real-valued codes estimate the tail "
        "of |x - median(x)| with two_sided_tail_index.")
  # The k + 1 largest, unordered among themselves: a partition is O(n) where a sort is O(n log n).
  top = np.partition(positive, positive.size - k - 1)[positive.size - k - 1:]
  threshold = top.min()
  total_log_excess = np.sum(np.log(top) - np.log(threshold))  # the threshold's own term is 0
  if total_log_excess == 0:
    raise ValueError(
        f"hill_estimator: the {k + 1} largest positive values all equal {threshold}, so the "
        "tail index is undefined. The sample is discrete or rounded at the top; use a larger k.")
  alpha_hat = k / float(total_log_excess)
  return alpha_hat, alpha_hat / k**0.5


def hill_tail_index(x: ArrayLike,
                    *,
                    fraction: float = 0.05,
                    min_k: int = 50) -> tuple[float, float]:
  """Hill estimate of the upper tail index of a positive sample, with ``k`` chosen for you.

  For positive codes (Pareto, LogNormal, Inverse Gaussian latents) and positive factors. The
  estimator is consistent only when ``k -> inf`` and ``k / n -> 0``, and the ``k`` that balances
  variance against body bias depends on the unknown tail, so there is no universal choice. The
  rule ``k = max(min_k, floor(fraction * n_positive))`` is the usual practical one: the top 5%
  of the sample, and never fewer than 50 values, which caps the relative standard error
  ``1 / sqrt(k)`` at 14%.

  A fixed fraction keeps the threshold at a fixed quantile, so for a light tail the estimate
  converges to a finite number instead of diverging: about 3.8 for an exponential sample at 5%
  (``1 / (e^t E_1(t))`` with ``t = log(1 / fraction)``). A finite estimate is therefore no
  evidence of a heavy tail by itself; compare codes with the factors they should reproduce, or
  use ``hill_estimator`` with a fixed ``k`` over growing ``n``, where a light-tail estimate grows
  like ``log(n / k)``.

  Args:
    x: 1-D sample; only its positive values count.
    fraction: share of the positive values used as the tail, in ``(0, 1)``.
    min_k: the least number of upper order statistics used, ``>= 1``.

  Returns:
    ``(alpha_hat, stderr)`` as in ``hill_estimator``.

  Raises:
    ValueError: for a bad ``fraction`` or ``min_k``, fewer than ``min_k + 1`` positive values,
      or the errors of ``hill_estimator``.
  """
  x = _finite(x, "x", "hill_tail_index", (1,))
  if not 0 < fraction < 1:
    raise ValueError(f"hill_tail_index: fraction must be in (0, 1), got {fraction}.")
  if int(min_k) != min_k or min_k < 1:
    raise ValueError(f"hill_tail_index: min_k must be a positive integer, got {min_k}.")
  n_positive = int(np.count_nonzero(x > 0))
  if n_positive < min_k + 1:
    raise ValueError(
        f"hill_tail_index: needs at least min_k + 1 = {min_k + 1} positive values, got "
        f"{n_positive} of {x.size}. Pass a larger sample or lower min_k.")
  # fraction < 1 keeps k <= n_positive - 1, so hill_estimator always has its threshold value.
  k = max(int(min_k), int(np.floor(fraction * n_positive)))
  return hill_estimator(x, k)


def two_sided_tail_index(x: ArrayLike,
                         *,
                         fraction: float = 0.05,
                         min_k: int = 50) -> tuple[float, float]:
  """Hill estimate of the tail index of a real-valued sample, over both of its tails.

  For real-valued codes (Gaussian latents, or any code that takes both signs), whose heavy side
  need not be the upper one. It estimates the upper tail of ``|x - median(x)|``, which is as
  heavy as the heavier of the two tails of ``x`` (the smaller index). Centering at the median
  makes the estimate location-invariant; values equal to the median drop out as non-positive.

  Args:
    x: 1-D sample.
    fraction: as in ``hill_tail_index``.
    min_k: as in ``hill_tail_index``.

  Returns:
    ``(alpha_hat, stderr)`` as in ``hill_estimator``.
  """
  x = _finite(x, "x", "two_sided_tail_index", (1,))
  return hill_tail_index(np.abs(x - np.median(x)), fraction=fraction, min_k=min_k)


def active_units(stats: ArrayLike, *, threshold: float = 0.01) -> tuple[np.ndarray, int]:
  """Activity of each latent dimension and the number of active ones (Burda et al., 2016).

  The activity of dimension ``d`` is the variance over examples of a per-example posterior
  statistic, ``Var_x(s_d(x))``; a dimension whose statistic ignores ``x`` has collapsed to the
  prior. Burda et al. use ``s(x) = E_q[z | x]``, which a Pareto posterior lacks when its
  ``alpha <= 1``: use a statistic every family has, such as ``E_q[log z | x]`` or the posterior
  median. The threshold is on the statistic's scale; 0.01 is Burda et al.'s for codes with unit
  prior variance, so compare families on statistics of comparable scale.

  Args:
    stats: per-example statistics, shape ``[N, D]``, ``N >= 2``.
    threshold: a dimension is active when its activity exceeds this.

  Returns:
    ``(activity, num_active)``: ``activity`` of shape ``[D]`` (variance with divisor ``N``)
    and the number of dimensions with ``activity > threshold``.

  References:
    Burda, Grosse and Salakhutdinov (2016), Importance Weighted Autoencoders, ICLR, section 5.2.
  """
  stats = _finite(stats, "stats", "active_units", (2,))
  if stats.shape[0] < 2:
    raise ValueError(
        f"active_units: stats has {stats.shape[0]} example(s); a variance over examples needs "
        "at least 2.")
  activity = np.var(stats.astype(np.float64), axis=0)
  return activity, int(np.count_nonzero(activity > threshold))


def discretize(values: ArrayLike, bins: int = 20) -> np.ndarray:
  """Equal-frequency (quantile) binning of each column into integer labels.

  Bins hold equal shares of the examples, so a heavy tail cannot crowd the bulk of the sample
  into one bin the way equal-width bins do, and the labels depend only on the ranks: any
  strictly increasing transform of a column leaves them unchanged. Equal values share a bin:
  one takes the bin of the lowest position of its run in the sorted column, so a run longer
  than ``N / bins`` can leave later bins empty. A column with at most ``bins`` distinct values
  (a discrete factor) keeps them all apart, labelled by rank.

  Args:
    values: shape ``[N]`` or ``[N, D]``.
    bins: number of bins, ``>= 2``.

  Returns:
    Integer labels in ``[0, bins)`` of the same shape as ``values``.

  Example:
    >>> import numpy as np
    >>> from pareto_vae_jax import metrics
    >>> metrics.discretize(np.array([1e6, 1.0, 3.0, 2.0, 1e3, 10.0]), 3).tolist()
    [2, 0, 1, 0, 2, 1]
  """
  values = _finite(values, "values", "discretize", (1, 2))
  if int(bins) != bins or bins < 2:
    raise ValueError(f"discretize: bins must be an integer >= 2, got {bins}.")
  bins = int(bins)
  columns = values.reshape(values.shape[0], -1)
  n = columns.shape[0]
  labels = np.empty(columns.shape, np.int64)
  for j, column in enumerate(columns.T):
    distinct, inverse, counts = np.unique(column, return_inverse=True, return_counts=True)
    if distinct.size <= bins:
      labels[:, j] = inverse
    else:
      # Examples strictly below each distinct value: its lowest position in the sorted column.
      below = np.cumsum(counts) - counts
      labels[:, j] = (below * bins // n)[inverse]
  return labels.reshape(values.shape)


def entropy(labels: ArrayLike) -> np.ndarray:
  """Plug-in (empirical) entropy of each column of discrete labels, in nats.

  Args:
    labels: discrete values, shape ``[N]`` or ``[N, K]``, e.g. the output of ``discretize``.

  Returns:
    ``H = -sum_v p_v log p_v`` with ``p_v`` the share of examples equal to ``v``: a scalar
    array for ``[N]`` input, shape ``[K]`` for ``[N, K]``.
  """
  labels = _finite(labels, "labels", "entropy", (1, 2))
  columns = labels.reshape(labels.shape[0], -1)
  result = np.empty(columns.shape[1])
  for j, column in enumerate(columns.T):
    p = np.unique(column, return_counts=True)[1] / column.size
    result[j] = -np.sum(p * np.log(p))
  return result.reshape(labels.shape[1:])


def _discrete_mutual_information(a: np.ndarray, b: np.ndarray) -> np.ndarray:
  """Plug-in MI in nats between each column of labels ``a [N, D]`` and ``b [N, K]`` -> ``[D, K]``.

  Labels are non-negative integers (``discretize`` output).
  """
  n, num_b = b.shape
  size = int(max(a.max(), b.max())) + 1
  counts_a = [np.bincount(column, minlength=size) for column in a.T]
  counts_b = np.stack([np.bincount(column, minlength=size) for column in b.T])  # [K, size]
  # One bincount per column of a fills all K joint tables: cell (k, i, j) sits at k size^2 + i
  # size + j. Memory is O(N K), not O(N D K).
  offsets = np.arange(num_b) * size * size
  mi = np.empty((a.shape[1], num_b))
  for d, column in enumerate(a.T):
    joint = np.bincount((column[:, None] * size + b + offsets).ravel(),
                        minlength=num_b * size * size).reshape(num_b, size, size)
    outer = counts_a[d][None, :, None] * counts_b[:, None, :]
    cell = joint > 0  # empty cells contribute 0 log 0 = 0
    # MI = sum p_ij log(p_ij / (p_i p_j)), in counts: (n_ij / N) log(N n_ij / (n_i n_j)).
    terms = np.zeros(joint.shape)
    terms[cell] = joint[cell] / n * np.log(n * joint[cell] / outer[cell])
    mi[d] = terms.sum(axis=(1, 2))
  return mi


def _codes_and_factors(codes: ArrayLike, factors: ArrayLike,
                       fn_name: str) -> tuple[np.ndarray, np.ndarray]:
  codes = _finite(codes, "codes", fn_name, (2,))
  factors = _finite(factors, "factors", fn_name, (2,))
  if codes.shape[0] != factors.shape[0]:
    raise ValueError(
        f"{fn_name}: codes has {codes.shape[0]} examples and factors {factors.shape[0]}; pass "
        "the code and the generating factors of the same examples, row for row.")
  return codes, factors


def mutual_information(codes: ArrayLike, factors: ArrayLike, *, bins: int = 20) -> np.ndarray:
  """Plug-in mutual information between each code dimension and each factor, in nats.

  Both are binned with ``discretize`` (equal-frequency, so the estimate is invariant to strictly
  increasing transforms of any column) and the MI of the empirical joint histogram is returned.
  The plug-in estimate is biased upwards: for independent columns ``2 N MI`` is asymptotically
  chi-squared with ``(B - 1)^2`` degrees of freedom (the G-test), a bias of ``(B - 1)^2 / (2 N)``
  for ``B`` bins each.

  Args:
    codes: shape ``[N, D]``.
    factors: shape ``[N, K]``, the same examples.
    bins: bins per column; discrete columns with at most ``bins`` values are kept exact.

  Returns:
    MI of shape ``[D, K]``.
  """
  codes, factors = _codes_and_factors(codes, factors, "mutual_information")
  return _discrete_mutual_information(discretize(codes, bins), discretize(factors, bins))


def factor_assignment(mi: ArrayLike) -> np.ndarray:
  """The code dimension that carries the most information about each factor.

  Args:
    mi: mutual information of shape ``[D, K]`` (``mutual_information``).

  Returns:
    Integer array of shape ``[K]``: ``argmax_d mi[d, k]`` (the lowest ``d`` on ties).
  """
  mi = _finite(mi, "mi", "factor_assignment", (2,))
  return np.argmax(mi, axis=0)


def mig(codes: ArrayLike, factors: ArrayLike, *, bins: int = 20) -> tuple[float, np.ndarray]:
  """Mutual Information Gap (Chen et al., 2018): how exclusively one code captures each factor.

  For each factor ``k``, the gap between the largest and second-largest MI over code dimensions,
  over the factor's entropy: ``(MI_(1) - MI_(2)) / H(v_k)``, in ``[0, 1]``. It is near 1 when
  one dimension alone encodes the factor and near 0 when none does or several do. MI is the
  binned plug-in estimate of ``mutual_information`` and ``H`` the entropy of the same binned
  factor, as in disentanglement_lib (Locatello et al., 2019), which however bins with equal
  widths: the scores are not comparable with its published numbers on heavy-tailed codes.

  Args:
    codes: shape ``[N, D]``, ``D >= 2``.
    factors: shape ``[N, K]``; no factor may be constant.
    bins: as in ``mutual_information``.

  Returns:
    ``(score, per_factor)``: the mean over factors and the per-factor gaps, shape ``[K]``.

  References:
    Chen, Li, Grosse and Duvenaud (2018), Isolating Sources of Disentanglement in Variational
    Autoencoders, NeurIPS. Locatello et al. (2019), Challenging Common Assumptions in the
    Unsupervised Learning of Disentangled Representations, ICML.
  """
  codes, factors = _codes_and_factors(codes, factors, "mig")
  if codes.shape[1] < 2:
    raise ValueError(f"mig: codes has {codes.shape[1]} dimension(s); the gap needs at least 2.")
  factor_labels = discretize(factors, bins)
  factor_entropy = entropy(factor_labels)
  if np.any(factor_entropy == 0):
    raise ValueError(
        f"mig: factors {np.flatnonzero(factor_entropy == 0).tolist()} are constant, so there is "
        "nothing to capture and the gap is 0 / 0. Drop them.")
  mi = _discrete_mutual_information(discretize(codes, bins), factor_labels)
  top_two = -np.sort(-mi, axis=0)[:2]
  per_factor = (top_two[0] - top_two[1]) / factor_entropy
  return float(per_factor.mean()), per_factor
