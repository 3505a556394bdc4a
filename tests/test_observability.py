"""Observability of a training run: TensorBoard images and histograms, profiler traces, progress."""

from __future__ import annotations

import functools

import ml_collections
import pytest

import tiny
from pareto_vae_jax import train
from pareto_vae_jax import interrupts
from test_reporting import _mnist_shaped, _summaries


def test_training_writes_images_and_histograms_to_tensorboard(tmp_path, monkeypatch, capsys):
  ds = _mnist_shaped(192)
  tiny.patch_dataset(monkeypatch, ds)
  config = tiny.config(likelihood="bernoulli", batch_size=32, num_epochs=2, conditional=True,
                       chunks_per_epoch=3)
  # Every update printed (not one line per 10 s), to see where the chunks end.
  monkeypatch.setattr(train.progress_lib, "Progress",
                      functools.partial(train.progress_lib.Progress, every_seconds=0.0))
  train.train_and_evaluate(config, str(tmp_path))
  summaries = _summaries(tmp_path / "tensorboard")
  assert {"images/reconstructions", "images/samples", "latent/log_z", "prior/log_z",
          "posterior/alpha"} <= set(summaries)
  # Both epochs wrote them: the latest is at the last training step.
  assert summaries["images/reconstructions"][0] == 2 * (192 // 32)
  assert summaries["images/reconstructions"][1].image.height == 4 * 28
  out = capsys.readouterr().out
  # The progress line moves inside each epoch (chunks of 2 steps: a third of an epoch).
  assert [line.split()[1] for line in out.splitlines() if line.startswith("train")] == [
      f"{n}/12" for n in range(2, 13, 2)]


def test_profile_steps_writes_a_trace(tmp_path, capsys):
  config = tiny.config(num_epochs=1, profile_steps="2:4", iwae_samples=2)
  train.fit(config, str(tmp_path))
  traces = list((tmp_path / "profile").rglob("*.xplane.pb"))
  assert len(traces) == 1 and traces[0].stat().st_size > 0
  assert "Profiled steps 2-3" in capsys.readouterr().out


@pytest.mark.parametrize("spec, window", [("", None), ("0", None), ("3", (1, 4)),
                                          ("10:15", (10, 15))])
def test_profile_window(spec, window):
  config = ml_collections.ConfigDict({"profile_steps": spec})
  assert interrupts.profile_window(config, 0) == window
  if window:  # a window behind a resumed run is skipped
    assert interrupts.profile_window(config, window[0] + 1) is None


@pytest.mark.parametrize("spec", ["a:b", "5:5", "x"])
def test_bad_profile_steps_are_refused_with_the_fix(spec):
  with pytest.raises(ValueError, match="profile_steps"):
    interrupts.profile_window(ml_collections.ConfigDict({"profile_steps": spec}), 0)
