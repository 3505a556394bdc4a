"""``pareto_vae_jax.load``: a trained run as a model object, in a fresh process, without its data.

A tiny run is trained through the command line; a second interpreter, in which loading any
dataset raises, loads it and encodes, decodes, reconstructs and samples; its ELBO over the test
set equals the figure the trainer saved, and its IWAE bound too.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tiny
from pareto_vae_jax import data as data_lib

_PROGRAM = textwrap.dedent("""
    import json, sys
    import numpy as np
    from pareto_vae_jax import data
    def no_data(*args, **kwargs):
      raise AssertionError("load() read the dataset")
    data.load_dataset = no_data
    import jax, jax.numpy as jnp
    import pareto_vae_jax as pvj
    workdir, inputs = sys.argv[1], np.load(sys.argv[2])
    x, y = inputs["x"], inputs["y"]
    model = pvj.load(workdir)
    labels = y if model.spec.conditional else None
    q = model.encode(x[:5], None if labels is None else labels[:5])
    z = np.asarray(pvj.rsample(jax.random.key(0), q) if pvj.family_info(q).rsample_log is None
                   else jnp.exp(pvj.rsample_log(jax.random.key(0), q)))
    out = {
        "family": type(q).__name__,
        "code_shape": list(z.shape),
        "decoded_shape": list(model.decode(z, None if labels is None else labels[:5]).shape),
        "reconstruction_shape": list(model.reconstruct(x[:5], None if labels is None
                                                       else labels[:5]).shape),
        "sample_shape": list(model.sample(jax.random.key(1), 3,
                                          None if labels is None else jnp.arange(3)).shape),
        "elbo": float(np.mean(model.elbo(x, labels))),
        "iwae": float(np.mean(model.iwae(x, labels, k=model.config.iwae_samples,
                                         batch_size=model.config.eval_batch_size))),
        "step": model.step,
    }
    print(json.dumps(out))
""")


@pytest.mark.parametrize("latent, conditional", [("lognormal", True), ("gaussian", False)])
def test_load_in_a_fresh_process_without_the_data_gives_the_trainers_figures(
    tmp_path, latent, conditional):
  workdir = tmp_path / "run"
  flags = [f"--latent={latent}", "--conditional" if conditional else "--noconditional"]
  proc = subprocess.run(
      [sys.executable, "-m", "pareto_vae_jax.main", "--dataset=synthetic_lognormal",
       f"--workdir={workdir}", *flags,
       *tiny.cli_flags(num_epochs=1, batch_size=256, eval_batch_size=1000, decoder_input="log",
                       iwae_samples=4)],
      capture_output=True, text=True, timeout=300, cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(workdir / "test_metrics.json") as f:
    saved = json.load(f)
  ds = data_lib.load_dataset("synthetic_lognormal", seed=0)
  np.savez(tmp_path / "test.npz", x=ds.test_x, y=ds.test_y)

  proc = subprocess.run([sys.executable, "-c", _PROGRAM, str(workdir), str(tmp_path / "test.npz")],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["family"] == {"lognormal": "LogNormal", "gaussian": "Gaussian"}[latent]
  assert out["code_shape"] == [5, 2]  # tiny's latent_dim
  assert out["decoded_shape"] == out["reconstruction_shape"] == [5, 2]
  assert out["sample_shape"] == [3, 2]
  assert out["step"] == saved["step"]
  # The same per-example keys as the trainer's evaluation: equal up to float summation order.
  assert out["elbo"] == pytest.approx(saved["elbo"], rel=1e-5, abs=1e-4)
  assert out["iwae"] == pytest.approx(saved["iwae"], rel=1e-5, abs=1e-4)


def test_load_refuses_a_workdir_without_checkpoints_and_says_how_to_train(tmp_path):
  import pareto_vae_jax as pvj
  with pytest.raises(FileNotFoundError, match="Train one first"):
    pvj.load(str(tmp_path))


def test_a_conditional_model_asks_for_labels(tmp_path):
  from pareto_vae_jax import trained, vae
  config = tiny.config(conditional=True)
  spec = vae.VAESpec.from_config(config, input_shape=(2,), num_classes=2)
  model = trained.TrainedVAE(spec=spec, params=spec.init(__import__("jax").random.key(0)),
                             config=config, step=0, workdir=str(tmp_path))
  with pytest.raises(ValueError, match="pass the labels"):
    model.encode(np.ones((3, 2), np.float32))
  with pytest.raises(ValueError, match="Expected inputs of shape"):
    model.encode(np.ones((3, 5), np.float32), np.zeros(3, np.int32))
