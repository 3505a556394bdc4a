"""One process of the two-process CPU test (tests/test_multihost.py); not a test itself.

    JAX_COORDINATOR_ADDRESS=127.0.0.1:PORT JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=i \
        python tests/multihost_worker.py WORKDIR OUT_DIR CONFIG_JSON

Joins the group the way ``main`` does (``multihost.initialize`` reads the environment), trains
the tiny config in two legs (a simulated pre-emption after ``halt`` steps, then a resume from
the shared checkpoint), evaluates, and saves this process's final parameters to
``OUT_DIR/params_<process>.npz``.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
  workdir, out_dir, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
  from pareto_vae_jax import multihost
  assert multihost.initialize(), "the environment should name two processes"
  import jax
  import tiny  # tests/tiny.py
  from pareto_vae_jax import train

  halt = overrides.pop("halt_after_steps")
  overrides["hidden"] = tuple(overrides["hidden"])
  train.fit(tiny.config(**overrides, halt_after_steps=halt), workdir)  # the "pre-empted" leg
  config = tiny.config(**overrides)
  state, _, _ = train.fit(config, workdir)  # resumes from the checkpoint both processes wrote
  results = train.train_and_evaluate(config, workdir)  # trained already: evaluates only
  params = jax.device_get(state.params)
  flat = {jax.tree_util.keystr(path): np.asarray(leaf)
          for path, leaf in jax.tree_util.tree_leaves_with_path(params)}
  np.savez(os.path.join(out_dir, f"params_{jax.process_index()}.npz"), **flat)
  with open(os.path.join(out_dir, f"result_{jax.process_index()}.json"), "w") as f:
    json.dump({"step": int(state.step), "process_count": jax.process_count(),
               "device_count": jax.device_count(), "local_devices": jax.local_device_count(),
               "elbo": results["elbo"]}, f)


if __name__ == "__main__":
  main()
