"""Sequence data: neural-network architectures as sequences, and user sequences from .npz.

One example is a float32 array ``x`` of shape ``(T, d)``, ``d = V + 1``, V the number of
token types INCLUDING the end-of-sequence type EOS, which is the last type, ``V - 1``.
Row t holds one step: ``x[t, :V]`` the one-hot type, ``x[t, V]`` the feature value. A
sequence of n real steps occupies rows 0..n-1, row n is the EOS token (one-hot EOS,
feature 0), rows n+1..T-1 are padding, all zeros (no type hot), so the mask of the real
steps and EOS is ``x[..., :V].sum(-1) > 0``. T is fixed per dataset: one more than the
longest sequence it can hold.

Architectures (``--dataset=architectures``)
-------------------------------------------

Token types (id: name, feature and its grid of settings). Every feature lies on a grid of
K settings; setting k (k = 0..K-1) is stored as the feature value k / (K - 1), so features
are in [0, 1] and exact reconstruction is measurable (`feature_value`, `feature_level`).
Types with no feature (K = 1) store 0.

====  ==========  =============  ==============================================
 id   name        feature        settings, level k = 0..K-1
====  ==========  =============  ==============================================
 0    input       none
 1    conv        filters        8, 16, 32, 64, 128, 256 (log2 scale: k = log2(f) - 3)
 2    batchnorm   none
 3    activation  which one      relu, elu, tanh, sigmoid (categorical, in this order)
 4    pool        kernel size    2, 3, 4 (linear)
 5    flatten     none
 6    dense       width          16, 32, ..., 1024 (log2 scale: k = log2(w) - 4)
 7    dropout     rate           0.1, 0.2, 0.3, 0.4, 0.5 (linear)
 8    output      classes        2, 10, 100, 1000
 9    eos         none           (end of sequence; never a real step)
====  ==========  =============  ==============================================

One "activation" type carries the kind of activation in its feature, so a network's
blocks are the same shape whichever nonlinearity they use; `render` prints the name
(``relu``), not ``activation``.

The grammar (``(x)`` optional, ``{a..b}`` repeated a to b times)::

    convolutional (label 0):
      input → [conv → (batchnorm) → activation → (pool)]{1..4} → flatten
            → [dense → activation → (dropout)]{0..3} → output
    fully connected (label 1):
      input → [dense → activation → (dropout)]{1..5} → output

So the longest network has 1 + 4*4 + 1 + 3*3 + 1 = 28 steps; T = 29 (EOS included) and
d = 11 for every seed. `why_invalid` checks this grammar and the feature grids.
`sample_architectures` draws valid networks, half of each kind, with some structure
(one activation and one dropout rate per network, batchnorm in all conv blocks or
none, conv filters non-decreasing, dense widths non-increasing); see its docstring.

User sequences (``--dataset=npz:PATH``)
---------------------------------------

`load_npz` reads a .npz file with these arrays (N examples, L longest length):

* ``types``: int [N, L], type ids 0..V_user-1 of the real steps; entries at or beyond
  ``lengths[i]`` are ignored (any padding value).
* ``features``: float [N, L], the feature of each step, finite; beyond ``lengths[i]``
  ignored.
* ``lengths``: int [N], number of real steps, 1..L.
* ``labels`` (optional): int [N], class labels 0..C-1. Without labels every label is 0
  and num_classes is 1, so ``--conditional`` has nothing to condition on.
* ``type_names`` (optional): str [V_user], a name per type id; default ``type0``, ...;
  without it V_user is one more than the largest type id in the file.
* ``test_types``, ``test_features``, ``test_lengths`` (and ``test_labels`` where
  ``labels`` is given), optional: an explicit test split, same layout (its L may differ).
  Without them a seeded 90/10 split of the examples (at least 1 test example).

Write one with e.g. ``np.savez(path, types=t, features=f, lengths=n, labels=y)``. The
loader appends EOS as type V_user (so V = V_user + 1, named ``eos``) and pads to T = 1 +
the longest length of both splits. Its features are used as they are: `SequenceInfo`'s
``feature_range`` is ``"unit"`` where every real feature is in [0, 1], else ``"real"``.

This is a leaf module: numpy only, it imports nothing from the package (`data` imports
it and wraps what it loads into a `data.Dataset`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Callable, Sequence

import numpy as np

# ---------------------------------------------------------------- vocabulary

INPUT, CONV, BATCHNORM, ACTIVATION, POOL, FLATTEN, DENSE, DROPOUT, OUTPUT, EOS = range(10)
TYPE_NAMES = ("input", "conv", "batchnorm", "activation", "pool", "flatten", "dense", "dropout",
              "output", "eos")
NUM_TYPES = len(TYPE_NAMES)  # V, EOS included

# Settings of each type's feature, in level order; one None = no feature.
FEATURE_GRIDS: tuple[tuple, ...] = (
    (None,),  # input
    (8, 16, 32, 64, 128, 256),  # conv: filters
    (None,),  # batchnorm
    ("relu", "elu", "tanh", "sigmoid"),  # activation: which
    (2, 3, 4),  # pool: kernel size
    (None,),  # flatten
    (16, 32, 64, 128, 256, 512, 1024),  # dense: width
    (0.1, 0.2, 0.3, 0.4, 0.5),  # dropout: rate
    (2, 10, 100, 1000),  # output: classes
    (None,),  # eos
)
FEATURE_NAMES = ("", "filters", "", "activation", "kernel size", "", "width", "rate", "classes", "")
NUM_LEVELS = tuple(len(g) for g in FEATURE_GRIDS)

MAX_CONV_BLOCKS = 4
MAX_DENSE_BLOCKS_CONV = 3  # dense blocks after flatten in a convolutional network
MAX_DENSE_BLOCKS_FC = 5
MAX_LEN = max(1 + 4 * MAX_CONV_BLOCKS + 1 + 3 * MAX_DENSE_BLOCKS_CONV + 1,
              1 + 3 * MAX_DENSE_BLOCKS_FC + 1)  # 28 real steps
LABEL_NAMES = ("convolutional", "fully connected")

# How far a feature may be from its grid value (float32 storage is far closer).
GRID_TOLERANCE = 1e-4

# Training and test sizes of --dataset=architectures.
_NUM_TRAIN = 20_000
_NUM_TEST = 2_000

# Share of a user file's examples that make its test split where the file has none.
_NPZ_TEST_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class SequenceInfo:
  """What a model and its evaluation need to know about a sequence dataset.

  Attributes:
    type_names: name of each token type, by id, "eos" (the EOS type) last; V entries.
    eos: id of the EOS type, V - 1.
    feature_range: "unit" where every feature is in [0, 1] (a sigmoid feature head
      fits), "real" otherwise (a feature may be any real number, negative included).
    checker: `is_valid`-like function (types, features) -> bool that says whether a
      decoded sequence is well formed, or None where there is no grammar (user data).
    feature_names: what each type's feature is (e.g. "filters"), "" for none, or None.
    feature_levels: number of grid levels K of each type's feature (1: no feature),
      feature value k / (K - 1) for level k; None where features are continuous.
  """

  type_names: tuple[str, ...]
  eos: int
  feature_range: str
  checker: Callable[..., bool] | None = None
  feature_names: tuple[str, ...] | None = None
  feature_levels: tuple[int, ...] | None = None

  @property
  def num_types(self) -> int:
    """V, the number of token types, EOS included."""
    return len(self.type_names)


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: arrays have no bool ==
class SequenceDataset:
  """A loaded sequence dataset: the fields of `data.Dataset` that it sets.

  `data.load_dataset` turns it into a `data.Dataset` (this module cannot import
  `data`, which imports it).

  Attributes:
    train_x: float32 [num_train, T, V + 1], the layout of the module docstring.
    train_y: int32 labels [num_train].
    test_x: float32 [num_test, T, V + 1].
    test_y: int32 labels [num_test].
    num_classes: number of label values.
    input_shape: (T, V + 1).
    name: "architectures" or "npz:PATH".
    source: a short description for logs.
    sequence: the `SequenceInfo`.
  """

  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  num_classes: int
  input_shape: tuple[int, ...]
  name: str
  source: str
  sequence: SequenceInfo


def feature_value(type_id: int, level: int) -> float:
  """The stored feature, in [0, 1], of grid level `level` of an architecture type.

  Args:
    type_id: architecture type id, 0..NUM_TYPES-1.
    level: 0..K-1, K = NUM_LEVELS[type_id]; 0 for a type without a feature.

  Returns:
    level / (K - 1), or 0.0 where K = 1.

  Raises:
    ValueError: the type id or the level is out of range.
  """
  k = _num_levels(type_id)
  if not 0 <= level < k:
    raise ValueError(f"level {level} of {TYPE_NAMES[type_id]} is outside 0..{k - 1}.")
  return level / (k - 1) if k > 1 else 0.0


def feature_level(type_id: int, value: float) -> int:
  """The grid level nearest to a feature value (clipped to [0, 1]) of an architecture type.

  Args:
    type_id: architecture type id.
    value: a feature value, e.g. a decoder's output.

  Returns:
    round(clip(value, 0, 1) * (K - 1)); 0 for a type without a feature.
  """
  k = _num_levels(type_id)
  if k == 1 or not math.isfinite(value):
    return 0
  return int(round(min(max(float(value), 0.0), 1.0) * (k - 1)))


def setting(type_id: int, value: float):
  """The setting (filters, "relu", rate, ...) nearest to a feature value, None for none."""
  return FEATURE_GRIDS[type_id][feature_level(type_id, value)]


def quantize(types: Sequence[int], features: Sequence[float]) -> list[float]:
  """Architecture features moved to their nearest grid value (e.g. a decoder's outputs)."""
  return [feature_value(t, feature_level(t, f)) for t, f in zip(types, features)]


def _num_levels(type_id: int) -> int:
  if not 0 <= type_id < NUM_TYPES:
    raise ValueError(f"type id {type_id} is outside 0..{NUM_TYPES - 1}.")
  return NUM_LEVELS[type_id]


# ---------------------------------------------------------------- grammar


def is_valid(types: Sequence[int], features: Sequence[float] | None = None) -> bool:
  """Whether a sequence is an architecture of the module docstring's grammar.

  Args:
    types: type ids of the real steps, optionally followed by one EOS id (no padding).
    features: feature of each step (the EOS entry optional), or None to check only
      the types.

  Returns:
    `why_invalid(types, features) is None`.
  """
  return why_invalid(types, features) is None


def why_invalid(types: Sequence[int], features: Sequence[float] | None = None) -> str | None:
  """Why a sequence is not an architecture of the grammar, or None where it is one.

  Checks, step by step, that the network starts with input and ends with output; that a
  convolutional network (step 1 conv) has 1..4 conv blocks conv → (batchnorm) →
  activation → (pool), then exactly one flatten, then 0..3 dense blocks dense →
  activation → (dropout); that a fully connected one (step 1 dense) has 1..5 dense
  blocks and no conv, batchnorm, pool or flatten; and, where `features` are given, that
  each is finite, on its type's grid, and 0 for a type without a feature.

  Args:
    types: type ids of the real steps, optionally followed by one EOS id (no padding).
      Steps are numbered from 0.
    features: feature of each step, as many as `types` or one fewer where `types` ends
      with EOS; None checks the types only.

  Returns:
    None for a valid sequence, else the first broken rule, naming the step, e.g.
    "step 3 (batchnorm): batchnorm follows activation; it must come right after a conv".

  Raises:
    ValueError: `features` has neither len(types) nor (after EOS) len(types) - 1 entries.
  """
  ids = []
  for i, t in enumerate(types):
    try:
      as_int = int(t)
    except (TypeError, ValueError, OverflowError):
      return f"step {i}: type id {t!r} is not an integer"
    if as_int != t:
      return f"step {i}: type id {t!r} is not an integer"
    if not 0 <= as_int < NUM_TYPES:
      return f"step {i}: type id {as_int} is outside 0..{NUM_TYPES - 1}"
    ids.append(as_int)
  with_eos = len(ids)
  if ids and ids[-1] == EOS:
    ids.pop()
  if features is not None:
    features = list(features)
    if len(features) not in (with_eos, len(ids)):
      raise ValueError(f"features has {len(features)} entries for {with_eos} types; give one "
                       "feature per step (the EOS step's may be left out).")
    features = features[:len(ids)]
  if EOS in ids:
    return (f"step {ids.index(EOS)} (eos): eos before the end; eos may only follow the last "
            "step")
  if not ids:
    return "empty sequence: a network has at least input, one layer block and output"
  if ids[0] != INPUT:
    return f"step 0 ({TYPE_NAMES[ids[0]]}): a network must start with input"
  if features is not None and (reason := _feature_reason(0, ids[0], features[0])):
    return reason
  kind = None  # "convolutional" or "fully connected", fixed by step 1
  flatten_at = None
  conv_blocks = dense_blocks = 0
  for i in range(1, len(ids)):
    t, prev = ids[i], ids[i - 1]
    name, after = TYPE_NAMES[t], TYPE_NAMES[prev]
    here = f"step {i} ({name})"
    dense_part = kind == "fully connected" or flatten_at is not None
    if prev == OUTPUT:
      return f"{here}: {name} after output (step {i - 1}); output must be the last step"
    if t == INPUT:
      return f"{here}: input after step 0; input may only be the first step"
    elif t == CONV:
      if kind == "fully connected":
        return (f"{here}: conv in a fully connected network (step 1 is dense); conv only in "
                "convolutional networks")
      if flatten_at is not None:
        return f"{here}: conv after flatten (step {flatten_at}); no conv in the dense part"
      if prev not in (INPUT, ACTIVATION, POOL):
        return (f"{here}: conv follows {after}; a conv block starts after input or after the "
                "previous block's activation or pool")
      conv_blocks += 1
      kind = kind or "convolutional"
      if conv_blocks > MAX_CONV_BLOCKS:
        return f"{here}: conv block {conv_blocks}; at most {MAX_CONV_BLOCKS} conv blocks"
    elif t == BATCHNORM:
      if prev != CONV:
        return f"{here}: batchnorm follows {after}; it must come right after a conv"
    elif t == ACTIVATION:
      if prev not in (CONV, BATCHNORM, DENSE):
        return (f"{here}: activation follows {after}; it must come right after conv, "
                "batchnorm or dense")
    elif t == POOL:
      if dense_part:
        return f"{here}: pool in the dense part; pool only ends a conv block"
      if prev != ACTIVATION:
        return f"{here}: pool follows {after}; it must come right after a conv block's activation"
    elif t == FLATTEN:
      if kind == "fully connected":
        return (f"{here}: flatten in a fully connected network (step 1 is dense); flatten only "
                "in convolutional networks")
      if flatten_at is not None:
        return f"{here}: second flatten (first at step {flatten_at}); flatten exactly once"
      if prev not in (ACTIVATION, POOL):
        return (f"{here}: flatten follows {after}; it must come right after the last conv "
                "block's activation or pool")
      flatten_at = i
    elif t == DENSE:
      if kind == "convolutional" and flatten_at is None:
        return (f"{here}: dense before flatten; a convolutional network flattens before its "
                "dense part")
      if prev not in (INPUT, FLATTEN, ACTIVATION, DROPOUT):
        return (f"{here}: dense follows {after}; a dense block starts after input, flatten, or "
                "the previous block's activation or dropout")
      dense_blocks += 1
      kind = kind or "fully connected"
      limit = MAX_DENSE_BLOCKS_CONV if kind == "convolutional" else MAX_DENSE_BLOCKS_FC
      if dense_blocks > limit:
        return f"{here}: dense block {dense_blocks}; at most {limit} in a {kind} network"
    elif t == DROPOUT:
      if prev != ACTIVATION or not dense_part:
        return (f"{here}: dropout follows {after}"
                f"{'' if dense_part else ' in the conv part'}; it must come right after an "
                "activation in the dense part")
    elif t == OUTPUT:
      if prev == INPUT:
        return f"{here}: output right after input; a network has at least one layer block"
      if kind == "convolutional" and flatten_at is None:
        return (f"{here}: output with no flatten; a convolutional network flattens before "
                "output")
      if prev not in (FLATTEN, ACTIVATION, DROPOUT):
        return (f"{here}: output follows {after}; it must come after flatten or a dense block's "
                "activation or dropout")
    if features is not None and (reason := _feature_reason(i, t, features[i])):
      return reason
  if ids[-1] != OUTPUT:
    return (f"step {len(ids) - 1} ({TYPE_NAMES[ids[-1]]}): the network ends with "
            f"{TYPE_NAMES[ids[-1]]}; it must end with output")
  return None


def _feature_reason(i: int, type_id: int, value) -> str | None:
  """Why the feature of step i is off its type's grid, or None."""
  name = TYPE_NAMES[type_id]
  here = f"step {i} ({name})"
  try:
    v = float(value)
  except (TypeError, ValueError):
    return f"{here}: feature {value!r} is not a number"
  if not math.isfinite(v):
    return f"{here}: feature {v} is not finite"
  k = NUM_LEVELS[type_id]
  if k == 1:
    if abs(v) > GRID_TOLERANCE:
      return f"{here}: feature {v:g}, but {name} has no feature; it must be 0"
    return None
  if not -GRID_TOLERANCE <= v <= 1 + GRID_TOLERANCE:
    return f"{here}: feature {v:g} is outside [0, 1]"
  if abs(v * (k - 1) - round(v * (k - 1))) > GRID_TOLERANCE * (k - 1):
    grid = ", ".join(f"{j / (k - 1):.4g}" for j in range(k))
    return (f"{here}: feature {v:g} is off the grid of {name}'s {FEATURE_NAMES[type_id]}, "
            f"which is {{{grid}}} for {FEATURE_GRIDS[type_id]}")
  return None


# ---------------------------------------------------------------- generator

_LEVEL_VALUES = tuple(
    np.array([feature_value(t, k)
              for k in range(NUM_LEVELS[t])], np.float64)
    for t in range(NUM_TYPES))


def sample_architectures(rng: np.random.Generator,
                         n: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
  """Draws n valid architectures, half convolutional and half fully connected.

  The labels are a random permutation of n // 2 zeros and n - n // 2 ones (0:
  convolutional, 1: fully connected). Each network draws, independently and
  uniformly unless said:

  * one activation (relu, elu, tanh, sigmoid) for all its blocks; batchnorm in all its
    conv blocks or in none (1/2); dropout in all its dense blocks or none (1/2), at one
    rate; the output's classes;
  * convolutional: 1..4 conv blocks, first filters 8..64, each next block the same or
    double (1/2 each, at most 256), a pool (1/2, kernel 2..4) per block; 0..3 dense
    blocks;
  * fully connected: 1..5 dense blocks;
  * dense widths: the first 128..1024, each next the same or half (at least 16).

  Args:
    rng: numpy generator; the same state gives the same networks.
    n: number of networks.

  Returns:
    n (types, features, label): int32 type ids of the real steps (no EOS), float32
    features on their grids, int label.
  """
  labels = rng.permutation(np.arange(n) % 2).astype(np.int32)
  act = rng.integers(0, NUM_LEVELS[ACTIVATION], n)
  use_bn = rng.random(n) < 0.5
  use_dropout = rng.random(n) < 0.5
  drop = rng.integers(0, NUM_LEVELS[DROPOUT], n)
  out = rng.integers(0, NUM_LEVELS[OUTPUT], n)
  n_conv = rng.integers(1, MAX_CONV_BLOCKS + 1, n)
  conv_steps = rng.integers(0, 2, (n, MAX_CONV_BLOCKS))
  conv_steps[:, 0] = rng.integers(0, 4, n)  # first block: 8..64 filters
  conv = np.minimum(np.cumsum(conv_steps, axis=1), NUM_LEVELS[CONV] - 1)
  pool = rng.random((n, MAX_CONV_BLOCKS)) < 0.5
  pool_k = rng.integers(0, NUM_LEVELS[POOL], (n, MAX_CONV_BLOCKS))
  n_dense = np.where(labels == 0, rng.integers(0, MAX_DENSE_BLOCKS_CONV + 1, n),
                     rng.integers(1, MAX_DENSE_BLOCKS_FC + 1, n))
  dense_steps = -rng.integers(0, 2, (n, MAX_DENSE_BLOCKS_FC))
  dense_steps[:, 0] = rng.integers(3, NUM_LEVELS[DENSE], n)  # first block: 128..1024
  dense = np.maximum(np.cumsum(dense_steps, axis=1), 0)

  # Plain-Python values: the loop below touches each one once.
  v = [values.tolist() for values in _LEVEL_VALUES]
  act_f = [v[ACTIVATION][a] for a in act.tolist()]
  drop_f = [v[DROPOUT][r] for r in drop.tolist()]
  out_f = [v[OUTPUT][o] for o in out.tolist()]
  conv_f = [[v[CONV][c] for c in row] for row in conv.tolist()]
  pool_f = [[v[POOL][p] for p in row] for row in pool_k.tolist()]
  dense_f = [[v[DENSE][w] for w in row] for row in dense.tolist()]
  pool, use_bn, use_dropout = pool.tolist(), use_bn.tolist(), use_dropout.tolist()
  n_conv, n_dense = n_conv.tolist(), n_dense.tolist()

  result = []
  for i, label in enumerate(labels.tolist()):
    t, f = [INPUT], [0.0]
    if label == 0:
      for b in range(n_conv[i]):
        t.append(CONV)
        f.append(conv_f[i][b])
        if use_bn[i]:
          t.append(BATCHNORM)
          f.append(0.0)
        t.append(ACTIVATION)
        f.append(act_f[i])
        if pool[i][b]:
          t.append(POOL)
          f.append(pool_f[i][b])
      t.append(FLATTEN)
      f.append(0.0)
    for b in range(n_dense[i]):
      t += [DENSE, ACTIVATION]
      f += [dense_f[i][b], act_f[i]]
      if use_dropout[i]:
        t.append(DROPOUT)
        f.append(drop_f[i])
    t.append(OUTPUT)
    f.append(out_f[i])
    result.append((np.array(t, np.int32), np.array(f, np.float32), label))
  return result


ARCHITECTURES_INFO = SequenceInfo(
    type_names=TYPE_NAMES,
    eos=EOS,
    feature_range="unit",
    checker=is_valid,
    feature_names=FEATURE_NAMES,
    feature_levels=NUM_LEVELS,
)


def load_architectures(seed: int = 0,
                       num_train: int = _NUM_TRAIN,
                       num_test: int = _NUM_TEST) -> SequenceDataset:
  """The architectures dataset: train and test from independent streams of one seed.

  Args:
    seed: data seed; the same seed gives the same data. The test split comes from its
      own stream, so it does not depend on `num_train`.
    num_train: train size.
    num_test: test size.

  Returns:
    The `SequenceDataset` ("architectures"): x float32 [N, 29, 11], labels int32 (0
    convolutional, 1 fully connected), num_classes 2, sequence `ARCHITECTURES_INFO`.
  """
  train_seq, test_seq = np.random.SeedSequence(seed).spawn(2)
  max_len = MAX_LEN + 1

  def split(seq: np.random.SeedSequence, n: int) -> tuple[np.ndarray, np.ndarray]:
    networks = sample_architectures(np.random.default_rng(seq), n)
    x = to_arrays([t for t, _, _ in networks], [f for _, f, _ in networks], max_len, NUM_TYPES)
    return x, np.array([y for _, _, y in networks], np.int32).reshape(n)

  train_x, train_y = split(train_seq, num_train)
  test_x, test_y = split(test_seq, num_test)
  return SequenceDataset(
      train_x=train_x,
      train_y=train_y,
      test_x=test_x,
      test_y=test_y,
      num_classes=2,
      input_shape=(max_len, NUM_TYPES + 1),
      name="architectures",
      source=f"synthetic network architectures (seed {seed}; pareto_vae_jax/sequences.py)",
      sequence=ARCHITECTURES_INFO,
  )


# ---------------------------------------------------------------- encoding


def to_array(types: Sequence[int], features: Sequence[float], max_len: int,
             num_types: int) -> np.ndarray:
  """Encodes one sequence as the module docstring's (T, V + 1) array.

  Args:
    types: type ids of the real steps, 0..num_types-2, without EOS.
    features: feature of each real step.
    max_len: T, the number of rows; at least len(types) + 1 (the EOS row).
    num_types: V, EOS (id V - 1) included.

  Returns:
    float32 (max_len, num_types + 1): one-hot types and features, EOS at row
    len(types), zero rows after it.

  Raises:
    ValueError: lengths disagree, the sequence does not fit, or a type id is out of
      0..num_types-2.
  """
  return to_arrays([types], [features], max_len, num_types)[0]


def to_arrays(types: Sequence[Sequence[int]], features: Sequence[Sequence[float]], max_len: int,
              num_types: int) -> np.ndarray:
  """`to_array` of many sequences: float32 (N, max_len, num_types + 1)."""
  if len(types) != len(features):
    raise ValueError(f"{len(types)} type sequences but {len(features)} feature sequences.")
  lengths = np.array([len(t) for t in types], np.int64).reshape(len(types))
  ids = np.full((len(types), max_len), -1, np.int64)
  values = np.zeros((len(types), max_len), np.float32)
  for i, (t, f) in enumerate(zip(types, features)):
    if len(f) != len(t):
      raise ValueError(f"sequence {i}: {len(t)} types but {len(f)} features.")
    if len(t) + 1 > max_len:
      raise ValueError(f"sequence {i}: {len(t)} steps and EOS do not fit in max_len={max_len}.")
    ids[i, :len(t)] = t
    values[i, :len(t)] = f
  return _encode(ids, values, lengths, num_types)


def _encode(ids: np.ndarray, values: np.ndarray, lengths: np.ndarray, num_types: int) -> np.ndarray:
  """One-hot encoding of padded ids/values (N, T); steps at or after `lengths` are ignored."""
  n, max_len = ids.shape
  real = np.arange(max_len) < lengths[:, None]
  real_ids = ids[real]
  if real_ids.size and (real_ids.min() < 0 or real_ids.max() > num_types - 2):
    bad = real_ids[(real_ids < 0) | (real_ids > num_types - 2)][0]
    raise ValueError(f"type id {bad} is outside 0..{num_types - 2} (id {num_types - 1} is EOS).")
  ids = np.where(real, ids, -1)
  ids[np.arange(n), lengths] = num_types - 1  # EOS
  x = np.zeros((n, max_len, num_types + 1), np.float32)
  x[..., :num_types] = ids[..., None] == np.arange(num_types)
  x[..., num_types] = np.where(real, values, 0)
  return x


def from_array(x) -> tuple[list[int], list[float]]:
  """Decodes one example: the argmax type of each row up to EOS, and the features.

  Works on the one-hot data and on a decoder's outputs alike (type logits or
  probabilities in the first V columns, the feature in the last).

  Args:
    x: array (T, V + 1) of one example.

  Returns:
    (types, features): Python ints and floats of the rows before the first row whose
    argmax is EOS (V - 1) or whose type columns are all zero (padding); EOS excluded.
    Features are returned as they are; `quantize` snaps architecture features to grid.
  """
  x = np.asarray(x)
  if x.ndim != 2 or x.shape[-1] < 2:
    raise ValueError(f"from_array takes one example of shape (T, V + 1); got {x.shape}.")
  num_types = x.shape[-1] - 1
  logits = x[:, :num_types]
  ids = np.argmax(logits, axis=-1)
  stop = (ids == num_types - 1) | ~np.any(logits != 0, axis=-1)
  n = int(np.argmax(stop)) if stop.any() else len(ids)
  return ids[:n].tolist(), x[:n, num_types].astype(np.float64).tolist()


def render(types: Sequence[int],
           features: Sequence[float] | None = None,
           vocab: SequenceInfo | Sequence[str] = ARCHITECTURES_INFO) -> str:
  """A sequence as text, e.g. "input → conv(64) → relu → flatten → output(10)".

  With the architecture vocabulary (the default) each feature is shown as its nearest
  grid setting and an activation by its name; types without a feature show no
  parentheses. With another vocabulary each step is "name(feature)", feature with 3
  significant digits ("name" without features).

  Args:
    types: type ids (a trailing EOS shows as "eos").
    features: the features, or None.
    vocab: a `SequenceInfo` or the type names by id.

  Returns:
    The steps joined by " → "; an id outside the vocabulary shows as "?id".
  """
  names = tuple(vocab.type_names if isinstance(vocab, SequenceInfo) else vocab)
  architecture = names == TYPE_NAMES
  steps = []
  for i, t in enumerate(types):
    t = int(t)
    if not 0 <= t < len(names):
      steps.append(f"?{t}")
      continue
    if features is None:
      steps.append(names[t])
    elif architecture:
      value = setting(t, float(features[i]))
      if t == ACTIVATION:
        steps.append(value)
      elif value is None:
        steps.append(names[t])
      else:
        steps.append(f"{names[t]}({value:g})")
    else:
      steps.append(f"{names[t]}({float(features[i]):.3g})")
  return " → ".join(steps)


# ---------------------------------------------------------------- user .npz

_NPZ_LAYOUT = ("types int [N, L], features float [N, L], lengths int [N] (1..L), optional "
               "labels int [N], type_names str [V_user], test_types/test_features/test_lengths/"
               "test_labels")


def load_npz(path: str, seed: int = 0) -> SequenceDataset:
  """User sequences from a .npz file in the module docstring's layout.

  Args:
    path: the .npz file.
    seed: seed of the 90/10 train/test split where the file has no test split.

  Returns:
    The `SequenceDataset` named "npz:PATH": x float32 [N, T, V_user + 2], EOS type
    V_user (named "eos"; "<eos>" where a user type is already named "eos"),
    T = 1 + the longest length; labels int32, num_classes = 1 + the largest label (1
    and all labels 0 without labels); sequence.checker None.

  Raises:
    ValueError: the file is missing or unreadable, or an array is missing, of the
      wrong shape or dtype, or holds bad values; the message names the array, what
      was expected, what was found, and the fix.
  """
  where = f"--dataset=npz:{path}"
  if not os.path.isfile(path):
    raise ValueError(f"{where}: no such file. Give the path of a .npz file written with "
                     f"np.savez(path, types=..., features=..., lengths=...) ({_NPZ_LAYOUT}).")
  try:
    archive = np.load(path, allow_pickle=False)
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f"{where}: not a readable .npz file ({e!r}); write it with np.savez "
                     f"({_NPZ_LAYOUT}).") from e
  with archive:
    if not hasattr(archive, "files"):
      raise ValueError(f"{where}: holds a single array, not a .npz archive of named arrays; "
                       f"write it with np.savez(path, types=..., ...) ({_NPZ_LAYOUT}).")
    arrays = {}
    for name in archive.files:
      try:
        arrays[name] = archive[name]
      except ValueError as e:  # object arrays need pickle
        raise ValueError(f"{where}: array '{name}' cannot be read without pickle ({e}); save "
                         f"it with a plain dtype, e.g. np.asarray({name}, dtype=str) for names "
                         "or .astype(np.int64) for ids.") from e

  def need(name: str) -> np.ndarray:
    if name not in arrays:
      raise ValueError(f"{where}: missing required array '{name}'; the file has "
                       f"{sorted(arrays) or 'no arrays'}. Expected {_NPZ_LAYOUT}.")
    return arrays[name]

  has_labels = "labels" in arrays
  test_names = ("test_types", "test_features", "test_lengths") + (
      ("test_labels",) if has_labels else ())
  has_test = any(name in arrays for name in test_names)
  if "test_labels" in arrays and not has_labels:
    raise ValueError(f"{where}: array 'test_labels' given without 'labels'; give both or "
                     "neither.")
  train = _read_split(where, need, "", has_labels)
  if has_test:
    test = _read_split(where, need, "test_", has_labels)
    for prefix, split in (("", train), ("test_", test)):
      if len(split[2]) < 1:
        raise ValueError(f"{where}: array '{prefix}lengths' has 0 examples; each split needs "
                         "at least 1.")
  else:
    n = len(train[2])
    if n < 2:
      raise ValueError(f"{where}: array 'types' has {n} example(s); at least 2 are needed for "
                       "a train and a test split (or give test_types/test_features/"
                       "test_lengths).")
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(_NPZ_TEST_FRACTION * n)))
    test = tuple(None if a is None else a[order[:n_test]] for a in train)
    train = tuple(None if a is None else a[order[n_test:]] for a in train)

  largest = max(_largest_type(train), _largest_type(test))
  if "type_names" in arrays:
    names = arrays["type_names"]
    if names.ndim != 1 or not np.issubdtype(names.dtype, np.str_):
      raise ValueError(f"{where}: array 'type_names' must be 1-D str [V_user]; found dtype "
                       f"{names.dtype}, shape {names.shape}. Save np.asarray(names, dtype=str).")
    if len(names) <= largest:
      raise ValueError(f"{where}: array 'type_names' has {len(names)} names but the type ids go "
                       f"up to {largest}; give one name per type id 0..{largest} (or more).")
    user_names = tuple(str(s) for s in names.tolist())
  else:
    user_names = tuple(f"type{i}" for i in range(largest + 1))
  type_names = user_names + ("<eos>" if "eos" in user_names else "eos",)
  num_types = len(type_names)

  max_len = 1 + max(int(train[2].max()), int(test[2].max()))

  def encode(split) -> np.ndarray:
    ids, values, lengths, _ = split
    ids, values = ids[:, :max_len], values[:, :max_len]  # a split's L may exceed T
    pad = max_len - ids.shape[1]
    ids = np.pad(ids.astype(np.int64), ((0, 0), (0, pad)), constant_values=-1)
    values = np.pad(values.astype(np.float32), ((0, 0), (0, pad)))
    return _encode(ids, values, lengths.astype(np.int64), num_types)

  real = np.concatenate([_real(train[1], train[2]), _real(test[1], test[2])])
  unit = bool(np.all((real >= 0) & (real <= 1)))
  labels = [
      np.zeros(len(s[2]), np.int32) if s[3] is None else s[3].astype(np.int32)
      for s in (train, test)
  ]
  num_classes = 1 + max(int(labels[0].max(initial=0)), int(labels[1].max(initial=0)))
  return SequenceDataset(
      train_x=encode(train),
      train_y=labels[0],
      test_x=encode(test),
      test_y=labels[1],
      num_classes=num_classes,
      input_shape=(max_len, num_types + 1),
      name=f"npz:{path}",
      source=(f"{path} ({len(train[2])} train, {len(test[2])} test, "
              f"{'its own test split' if has_test else f'seeded 90/10 split, seed {seed}'})"),
      sequence=SequenceInfo(
          type_names=type_names,
          eos=num_types - 1,
          feature_range="unit" if unit else "real",
      ),
  )


def _read_split(where: str, need: Callable[[str], np.ndarray], prefix: str, has_labels: bool):
  """Checked (types, features, lengths, labels or None) of one split of a user file."""
  types, features, lengths = (need(prefix + n) for n in ("types", "features", "lengths"))
  name = lambda n: f"'{prefix}{n}'"
  if types.ndim != 2:
    raise ValueError(f"{where}: array {name('types')} must be 2-D int [N, L]; found shape "
                     f"{types.shape}. Pad the sequences to one length L and stack them.")
  n, max_len = types.shape
  if not np.issubdtype(types.dtype, np.integer):
    raise ValueError(f"{where}: array {name('types')} must have an integer dtype (type ids); "
                     f"found {types.dtype}. Save types.astype(np.int64).")
  if features.ndim != 2 or features.shape != types.shape:
    raise ValueError(f"{where}: array {name('features')} must be [N, L] = {types.shape} like "
                     f"{name('types')}; found shape {features.shape}. Give one feature per step.")
  if not (np.issubdtype(features.dtype, np.number) or features.dtype == bool):
    raise ValueError(f"{where}: array {name('features')} must be numeric (float); found dtype "
                     f"{features.dtype}. Save features.astype(np.float32).")
  if lengths.ndim != 1 or lengths.shape[0] != n:
    raise ValueError(f"{where}: array {name('lengths')} must be 1-D int [N] = [{n}] (N from "
                     f"{name('types')}); found shape {lengths.shape}.")
  if not np.issubdtype(lengths.dtype, np.integer):
    raise ValueError(f"{where}: array {name('lengths')} must have an integer dtype; found "
                     f"{lengths.dtype}. Save lengths.astype(np.int64).")
  if n and (lengths.min() < 1 or lengths.max() > max_len):
    i = int(np.argmax((lengths < 1) | (lengths > max_len)))
    raise ValueError(f"{where}: array {name('lengths')} must be in 1..L = 1..{max_len}; found "
                     f"lengths[{i}] = {lengths[i]}. Give the number of real steps of each "
                     "sequence (at least 1, at most the padded length L).")
  real = np.arange(max_len) < lengths[:, None]
  if np.any(real & (types < 0)):
    i, j = np.argwhere(real & (types < 0))[0]
    raise ValueError(f"{where}: array {name('types')} must hold type ids >= 0 at real steps; "
                     f"found {name('types')}[{i}, {j}] = {types[i, j]} (lengths[{i}] = "
                     f"{lengths[i]}). Number the types 0..V_user-1.")
  bad = real & ~np.isfinite(features.astype(np.float64))
  if np.any(bad):
    i, j = np.argwhere(bad)[0]
    raise ValueError(f"{where}: array {name('features')} must be finite at real steps; found "
                     f"{name('features')}[{i}, {j}] = {features[i, j]}. Replace NaN/inf "
                     "values (e.g. with 0) or drop those sequences.")
  labels = None
  if has_labels:
    labels = need(prefix + "labels")
    if labels.ndim != 1 or labels.shape[0] != n:
      raise ValueError(f"{where}: array {name('labels')} must be 1-D int [N] = [{n}]; found "
                       f"shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer):
      raise ValueError(f"{where}: array {name('labels')} must have an integer dtype (classes "
                       f"0..C-1); found {labels.dtype}. Save labels.astype(np.int64).")
    if n and labels.min() < 0:
      i = int(np.argmin(labels))
      raise ValueError(f"{where}: array {name('labels')} must be >= 0 (classes 0..C-1); found "
                       f"{name('labels')}[{i}] = {labels[i]}.")
  return types, features, lengths, labels


def _real(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
  """The entries of (N, L) `values` at real steps, flat."""
  return values[np.arange(values.shape[1]) < lengths[:, None]]


def _largest_type(split) -> int:
  real = _real(split[0], split[2])
  return int(real.max()) if real.size else 0
