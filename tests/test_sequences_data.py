"""Tests of pareto_vae_jax.sequences: the architecture grammar, generator, encoding, .npz loader."""

import re

import numpy as np
import pytest

from pareto_vae_jax import data
from pareto_vae_jax import sequences as seq
from pareto_vae_jax.sequences import (ACTIVATION, BATCHNORM, CONV, DENSE, DROPOUT, EOS, FLATTEN,
                                      INPUT, OUTPUT, POOL)

V = seq.NUM_TYPES

# input → conv(64) → batchnorm → relu → pool(2) → flatten → dense(128) → relu → dropout(0.3)
# → output(10), as (type, setting index) pairs.
EXAMPLE = [(INPUT, 0), (CONV, 3), (BATCHNORM, 0), (ACTIVATION, 0), (POOL, 0), (FLATTEN, 0),
           (DENSE, 3), (ACTIVATION, 0), (DROPOUT, 2), (OUTPUT, 1)]
EXAMPLE_TEXT = ("input → conv(64) → batchnorm → relu → pool(2) → flatten → dense(128) → relu → "
                "dropout(0.3) → output(10)")


def _example():
  types = [t for t, _ in EXAMPLE]
  return types, [seq.feature_value(t, k) for t, k in EXAMPLE]


@pytest.fixture(scope="module")
def small():
  return seq.load_architectures(seed=0, num_train=600, num_test=200)


# ---------------------------------------------------------------- grammar

C, B, A, P, F, D, R, O = CONV, BATCHNORM, ACTIVATION, POOL, FLATTEN, DENSE, DROPOUT, OUTPUT
I = INPUT


@pytest.mark.parametrize("types", [
    [I, C, A, F, O],
    [I, C, B, A, P, C, A, F, D, A, R, O],
    [I, C, A, P, C, B, A, C, A, C, A, P, F, D, A, D, A, R, D, A, O],
    [I, D, A, O],
    [I, D, A, R, D, A, D, A, D, A, D, A, R, O],
    [I, D, A, O, EOS],
])
def test_valid_hand_written_sequences(types):
  assert seq.why_invalid(types) is None and seq.is_valid(types)
  assert seq.is_valid(np.asarray(types, np.int32))


def test_the_hand_example_is_valid_with_its_features():
  types, features = _example()
  assert seq.why_invalid(types, features) is None
  assert seq.is_valid(types + [EOS], features)  # the EOS feature may be left out
  assert seq.is_valid(types + [EOS], features + [0.0])


@pytest.mark.parametrize("types, step, words", [
    ([], None, "empty sequence"),
    ([C, A, F, O], 0, "must start with input"),
    ([I, D, A], 2, "must end with output"),
    ([I, D, A, O, D, A, O], 4, "after output"),
    ([I, I, D, A, O], 1, "input may only be the first step"),
    ([I, C, A, B, F, O], 3, "batchnorm follows activation"),
    ([I, A, D, A, O], 1, "activation follows input"),
    ([I, C, F, O], 2, "flatten follows conv"),
    ([I, C, C, A, F, O], 2, "conv follows conv"),
    ([I, C, P, A, F, O], 2, "pool follows conv"),
    ([I, C, A, F, D, A, P, O], 6, "pool in the dense part"),
    ([I, C, A, F, C, A, O], 4, "conv after flatten"),
    ([I, D, A, C, A, O], 3, "conv in a fully connected network"),
    ([I, C, A, F, F, O], 4, "second flatten"),
    ([I, D, A, F, O], 3, "flatten in a fully connected network"),
    ([I, C, A, O], 3, "output with no flatten"),
    ([I, C, A, D, A, O], 3, "dense before flatten"),
    ([I, C, A, R, F, O], 3, "dropout follows activation in the conv part"),
    ([I, D, R, A, O], 2, "dropout follows dense"),
    ([I, D, A, R, R, O], 4, "dropout follows dropout"),
    ([I, D, D, A, O], 2, "dense follows dense"),
    ([I, D, O], 2, "output follows dense"),
    ([I, O], 1, "output right after input"),
    ([I] + [C, A] * 5 + [F, O], 9, "conv block 5; at most 4"),
    ([I, C, A, F] + [D, A] * 4 + [O], 10, "dense block 4; at most 3"),
    ([I] + [D, A] * 6 + [O], 11, "dense block 6; at most 5"),
    ([I, D, EOS, A, O], 2, "eos before the end"),
    ([I, D, 10, O], 2, "type id 10 is outside 0..9"),
    ([I, D, 1.5, O], 2, "not an integer"),
    ([I, D, -1, O], 2, "outside 0..9"),
])
def test_each_grammar_rule_broken_once(types, step, words):
  reason = seq.why_invalid(types)
  assert reason is not None and words in reason, reason
  if step is not None:
    assert re.match(rf"step {step}\b", reason), reason
  assert not seq.is_valid(types)


@pytest.mark.parametrize("index, value, words", [
    (1, 0.1, "off the grid of conv's filters"),
    (1, 1.5, "outside [0, 1]"),
    (1, -0.2, "outside [0, 1]"),
    (6, float("nan"), "not finite"),
    (2, 0.5, "batchnorm has no feature"),
    (0, 1.0, "input has no feature"),
    (8, 0.33, "off the grid of dropout's rate"),
])
def test_each_feature_rule_broken_once(index, value, words):
  types, features = _example()
  features[index] = value
  reason = seq.why_invalid(types, features)
  assert reason is not None and re.match(rf"step {index}\b", reason) and words in reason, reason
  assert seq.is_valid(types)  # the types alone are fine


def test_features_of_the_wrong_length_are_a_caller_error():
  types, features = _example()
  with pytest.raises(ValueError, match="features has"):
    seq.why_invalid(types, features[:-2])


def test_feature_grid_helpers():
  for t in range(V):
    k = seq.NUM_LEVELS[t]
    values = [seq.feature_value(t, level) for level in range(k)]
    assert values[0] == 0.0 and (k == 1 or values[-1] == 1.0)
    assert [seq.feature_level(t, v) for v in values] == list(range(k))
    assert [seq.feature_level(t, v + 0.2 / max(k, 2) - 1e-6) for v in values] == list(range(k))
  assert seq.feature_level(CONV, 7.0) == 5 and seq.feature_level(CONV, -3.0) == 0
  assert seq.setting(CONV, seq.feature_value(CONV, 3)) == 64  # log2 scale: 8 * 2**3
  assert seq.setting(DENSE, 1.0) == 1024 and seq.setting(DROPOUT, 0.5) == 0.3
  assert seq.setting(ACTIVATION, 1 / 3) == "elu" and seq.setting(FLATTEN, 0.0) is None
  assert seq.quantize([CONV, POOL], [0.19, 0.6]) == [0.2, 0.5]
  with pytest.raises(ValueError, match="outside"):
    seq.feature_value(CONV, 6)


# ---------------------------------------------------------------- generator


def test_every_generated_sequence_is_valid_and_both_kinds_are_balanced():
  networks = seq.sample_architectures(np.random.default_rng(1), 3000)
  labels = np.array([y for _, _, y in networks])
  assert abs(labels.mean() - 0.5) < 0.01
  for types, features, label in networks:
    assert types.dtype == np.int32 and features.dtype == np.float32
    assert seq.why_invalid(types, features) is None, seq.render(types, features)
    assert label == (0 if types[1] == CONV else 1)
  lengths = [len(t) for t, _, _ in networks]
  assert min(lengths) == 4 and max(lengths) <= seq.MAX_LEN
  kinds = {
      (int(t[1]), bool(POOL in t), bool(BATCHNORM in t), bool(DROPOUT in t)) for t, _, _ in networks
  }
  assert len(kinds) == 2 * 2 * 2 + 2  # each optional layer shows up in each kind it can be in


def test_load_architectures_layout(small):
  assert small.name == "architectures" and small.num_classes == 2
  assert small.input_shape == (seq.MAX_LEN + 1, V + 1) == (29, 11)
  assert small.train_x.shape == (600, 29, 11) and small.test_x.shape == (200, 29, 11)
  assert small.train_x.dtype == np.float32 and small.train_y.dtype == np.int32
  assert small.train_y.mean() == 0.5 and small.test_y.mean() == 0.5
  assert small.sequence is seq.ARCHITECTURES_INFO
  info = small.sequence
  assert info.type_names[-1] == "eos" and info.eos == V - 1 == EOS and info.num_types == V
  assert info.feature_range == "unit" and info.checker is seq.is_valid
  for x in (small.train_x, small.test_x):
    assert x.min() >= 0 and x.max() <= 1
    assert set(np.unique(x[..., :V])) == {0.0, 1.0}
    assert np.all(x[..., :V].sum(-1) <= 1)
  for x, y in zip(small.test_x, small.test_y):
    types, features = seq.from_array(x)
    assert seq.is_valid(types, features) and y == (types[1] != CONV)


def test_splits_are_fixed_per_seed_and_differ_between_seeds(small):
  again = seq.load_architectures(seed=0, num_train=600, num_test=200)
  np.testing.assert_array_equal(again.train_x, small.train_x)
  np.testing.assert_array_equal(again.test_y, small.test_y)
  np.testing.assert_array_equal(again.test_x, small.test_x)
  other = seq.load_architectures(seed=1, num_train=600, num_test=200)
  assert not np.array_equal(other.train_x, small.train_x)
  assert not np.array_equal(other.test_x, small.test_x)
  # The test stream is separate: it does not depend on the train size.
  more = seq.load_architectures(seed=0, num_train=50, num_test=200)
  np.testing.assert_array_equal(more.test_x, small.test_x)
  assert not np.array_equal(small.train_x[:200], small.test_x)


def test_load_dataset_dispatches_to_architectures():
  assert "architectures" in data.DATASETS
  ds = data.load_dataset("architectures", seed=3)
  assert isinstance(ds, data.Dataset) and ds.name == "architectures"
  assert ds.train_x.shape == (20_000, 29, 11) and ds.test_x.shape == (2_000, 29, 11)
  assert ds.sequence is seq.ARCHITECTURES_INFO and ds.factors_train is None
  with pytest.raises(ValueError, match="npz:PATH"):
    data.load_dataset("nope")


def test_the_other_datasets_have_no_sequence_info():
  assert data.load_dataset("synthetic_lognormal").sequence is None


# ---------------------------------------------------------------- encoding


def test_to_array_layout_and_round_trip():
  types, features = _example()
  x = seq.to_array(types, features, 15, V)
  assert x.shape == (15, V + 1) and x.dtype == np.float32
  n = len(types)
  np.testing.assert_array_equal(np.argmax(x[:n, :V], -1), types)
  np.testing.assert_allclose(x[:n, V], features, rtol=1e-6)
  np.testing.assert_array_equal(x[n], np.eye(V + 1)[EOS])  # EOS at row `length`, feature 0
  assert not x[n + 1:].any()  # padding rows are all zero
  np.testing.assert_array_equal(x[..., :V].sum(-1) > 0, np.arange(15) <= n)
  back_types, back_features = seq.from_array(x)
  assert back_types == types and all(isinstance(t, int) for t in back_types)
  np.testing.assert_allclose(back_features, features, rtol=1e-6)
  with pytest.raises(ValueError, match="do not fit"):
    seq.to_array(types, features, n, V)
  with pytest.raises(ValueError, match="outside"):
    seq.to_array([INPUT, EOS], [0, 0], 5, V)


def test_round_trip_of_generated_data(small):
  for x in small.train_x[:300]:
    types, features = seq.from_array(x)
    np.testing.assert_array_equal(seq.to_array(types, features, 29, V), x)
  lengths = (small.train_x[..., :V].sum(-1) > 0).sum(-1) - 1
  eos_rows = small.train_x[np.arange(600), lengths]
  assert np.all(eos_rows[:, EOS] == 1) and np.all(eos_rows[:, V] == 0)


def test_from_array_reads_decoder_outputs():
  types, features = _example()
  x = seq.to_array(types, features, 15, V)
  rng = np.random.default_rng(0)
  logits = 6.0 * x[:, :V] + rng.normal(size=(15, V))  # logits, padding rows non-zero
  noisy = np.concatenate([logits, x[:, V:] + 0.01], axis=-1)
  back_types, back_features = seq.from_array(noisy)
  assert back_types == types
  assert seq.quantize(back_types, back_features) == pytest.approx(features)
  probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
  assert seq.from_array(np.concatenate([probs, x[:, V:]], -1))[0] == types
  # No EOS: it stops at the first all-zero row, or at the end.
  no_eos = x.copy()
  no_eos[len(types)] = 0
  assert seq.from_array(no_eos)[0] == types
  assert seq.from_array(x[:len(types)])[0] == types


def test_render():
  types, features = _example()
  assert seq.render(types, features) == EXAMPLE_TEXT
  assert seq.render(types + [EOS], features + [0.0]).endswith("output(10) → eos")
  assert seq.render([INPUT, DENSE], None) == "input → dense"
  assert seq.render([0, 1, 7], [0.5, 0.25, 0.0], ("a", "b", "eos")) == "a(0.5) → b(0.25) → ?7"


# ---------------------------------------------------------------- user .npz


def _user_arrays(n=20, length=6, num_types=3, seed=0):
  rng = np.random.default_rng(seed)
  lengths = rng.integers(1, length + 1, n)
  types = rng.integers(0, num_types, (n, length))
  types[0, :] = num_types - 1  # the largest id shows up
  lengths[0] = length
  types[np.arange(length) >= lengths[:, None]] = -7  # padding values are ignored
  features = rng.random((n, length)).astype(np.float32)
  features[np.arange(length) >= lengths[:, None]] = np.nan
  return {"types": types, "features": features, "lengths": lengths}


def _save(tmp_path, arrays, name="seqs.npz"):
  path = str(tmp_path / name)
  np.savez(path, **arrays)
  return path


def _check_user_split(x, arrays, rows):
  """x holds `rows` of the file's arrays, EOS appended and padded."""
  v = x.shape[-1] - 1
  for xi, i in zip(x, rows):
    n = arrays["lengths"][i]
    types, features = seq.from_array(xi)
    assert types == arrays["types"][i, :n].tolist()
    np.testing.assert_allclose(features, arrays["features"][i, :n], rtol=1e-6)
    assert xi[n, v - 1] == 1 and not xi[n + 1:].any()


def test_load_npz_without_labels_splits_90_10_by_seed(tmp_path):
  arrays = _user_arrays()
  path = _save(tmp_path, arrays)
  ds = seq.load_npz(path, seed=0)
  assert ds.name == f"npz:{path}" and ds.num_classes == 1
  assert ds.train_x.shape == (18, 7, 5) and ds.test_x.shape == (2, 7, 5)
  assert ds.input_shape == (7, 5) and ds.train_x.dtype == np.float32
  assert not ds.train_y.any() and not ds.test_y.any() and ds.train_y.dtype == np.int32
  info = ds.sequence
  assert info.type_names == ("type0", "type1", "type2", "eos") and info.eos == 3
  assert info.feature_range == "unit" and info.checker is None
  order = np.random.default_rng(0).permutation(20)
  _check_user_split(ds.test_x, arrays, order[:2])
  _check_user_split(ds.train_x, arrays, order[2:])
  again, other = seq.load_npz(path, seed=0), seq.load_npz(path, seed=1)
  np.testing.assert_array_equal(again.train_x, ds.train_x)
  assert not np.array_equal(other.test_x, ds.test_x)
  via_data = data.load_dataset(f"npz:{path}", seed=0)
  assert isinstance(via_data, data.Dataset) and via_data.sequence == info
  np.testing.assert_array_equal(via_data.train_x, ds.train_x)


def test_load_npz_with_labels_names_and_real_features(tmp_path):
  arrays = _user_arrays(n=30, num_types=4)
  arrays["labels"] = np.arange(30) % 3
  arrays["features"] = arrays["features"] * 5 - 1
  arrays["type_names"] = np.array(["conv", "eos", "relu", "pool", "spare"])
  ds = seq.load_npz(_save(tmp_path, arrays), seed=2)
  assert ds.num_classes == 3 and ds.train_x.shape == (27, 7, 7)
  assert ds.sequence.type_names == ("conv", "eos", "relu", "pool", "spare", "<eos>")
  assert ds.sequence.eos == 5 and ds.sequence.feature_range == "real"
  order = np.random.default_rng(2).permutation(30)
  np.testing.assert_array_equal(ds.test_y, arrays["labels"][order[:3]])
  _check_user_split(ds.train_x, arrays, order[3:])


def test_load_npz_explicit_test_split(tmp_path):
  arrays = _user_arrays(n=10, length=4)
  test = _user_arrays(n=3, length=9, seed=1)
  test["lengths"][:] = [2, 3, 1]  # its L (9) exceeds T - 1 (4): cut
  arrays.update({f"test_{k}": v for k, v in test.items()})
  arrays["labels"], arrays["test_labels"] = np.arange(10) % 2, np.array([1, 0, 1])
  ds = seq.load_npz(_save(tmp_path, arrays))
  assert ds.train_x.shape == (10, 5, 5) and ds.test_x.shape == (3, 5, 5)
  _check_user_split(ds.train_x, arrays, range(10))
  _check_user_split(ds.test_x, test, range(3))
  np.testing.assert_array_equal(ds.test_y, [1, 0, 1])
  assert ds.num_classes == 2 and "its own test split" in ds.source


def _without(name):
  return lambda a: a.pop(name)


def _set(name, value):

  def edit(a):
    a[name] = value(a) if callable(value) else value

  return edit


def _put(name, index, value):

  def edit(a):
    a[name] = a[name].copy()
    a[name][index] = value

  return edit


@pytest.mark.parametrize("edit, array, words", [
    (_without("types"), "types", "missing required array"),
    (_without("features"), "features", "missing required array"),
    (_without("lengths"), "lengths", "missing required array"),
    (_set("types", lambda a: a["types"][0]), "types", "must be 2-D"),
    (_set("features", lambda a: a["features"][:, :3]), "features", "found shape (20, 3)"),
    (_set("features", lambda a: a["features"][:5]), "features", "must be [N, L]"),
    (_set("lengths", lambda a: a["lengths"][:5]), "lengths", "must be 1-D int [N] = [20]"),
    (_set("lengths", lambda a: a["lengths"][:, None]), "lengths", "must be 1-D"),
    (_set("types", lambda a: a["types"] + 0.5), "types", "integer dtype"),
    (_put("types", (3, 0), -2), "types", "types'[3, 0] = -2"),
    (_put("lengths", 4, 0), "lengths", "lengths[4] = 0"),
    (_put("lengths", 4, 7), "lengths", "must be in 1..L = 1..6"),
    (_set("lengths", lambda a: a["lengths"].astype(float)), "lengths", "integer dtype"),
    (_put("features", (2, 0), np.nan), "features", "must be finite"),
    (_put("features", (2, 0), np.inf), "features", "must be finite"),
    (_set("features", lambda a: a["features"].astype(str)), "features", "numeric"),
    (_set("labels", lambda a: -np.arange(20)), "labels", "must be >= 0"),
    (_set("labels", lambda a: np.arange(20) / 2), "labels", "integer dtype"),
    (_set("labels", lambda a: np.arange(19)), "labels", "[N] = [20]"),
    (_set("type_names", np.array(["a", "b"])), "type_names", "has 2 names"),
    (_set("type_names", np.array([1, 2, 3])), "type_names", "str"),
    (_set("test_labels", np.array([0])), "test_labels", "without 'labels'"),
    (_set("test_types", lambda a: a["types"]), "test_features", "missing required array"),
    (lambda a: [a.__setitem__(k, a[k][:1]) for k in ("types", "features", "lengths")], "types",
     "at least 2"),
])
def test_load_npz_rejects_bad_arrays_naming_them(tmp_path, edit, array, words):
  arrays = _user_arrays()
  edit(arrays)
  with pytest.raises(ValueError) as info:
    seq.load_npz(_save(tmp_path, arrays))
  message = str(info.value)
  assert f"'{array}" in message and words in message, message


def test_load_npz_missing_or_unreadable_file(tmp_path):
  with pytest.raises(ValueError, match="no such file"):
    seq.load_npz(str(tmp_path / "absent.npz"))
  with pytest.raises(ValueError, match="no such file"):
    data.load_dataset(f"npz:{tmp_path / 'absent.npz'}")
  (tmp_path / "junk.npz").write_text("not an archive")
  with pytest.raises(ValueError, match="not a readable .npz"):
    seq.load_npz(str(tmp_path / "junk.npz"))
  objects = {**_user_arrays(), "type_names": np.array(["a", 1, None], dtype=object)}
  np.savez(tmp_path / "objects.npz", **objects)
  with pytest.raises(ValueError, match="'type_names' cannot be read without pickle"):
    seq.load_npz(str(tmp_path / "objects.npz"))
