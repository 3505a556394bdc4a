r"""MNIST on a TPU VM or pod slice: the report's conv net, a global batch of 1024, 100 epochs.

    WORKDIR=/mnt/shared/pareto-vae/pareto-cvae bash launch/tpu_vm.sh all
    python -m pareto_vae_jax.main --multihost --config=tpu --latent=pareto --conditional --workdir=/mnt/shared/pareto-vae/pareto-cvae

The second command runs on every worker at once (``launch/tpu_vm.sh train`` starts it so).
Not yet run on a TPU: the learning rate is the default's, untuned for this batch.
"""

from pareto_vae_jax import config as default


def get_config():
  c = default.get_config()
  c.architecture = "conv"        # the MNIST report's tables 1-2
  # Global, split over every device of every host: a multiple of the device count of any slice
  # with a power-of-two count up to 1024 (v4-8: 4, v5litepod-8: 8, v5litepod-16 and v4-32: 16).
  c.batch_size = 1024
  c.num_epochs = 100             # 58 steps per epoch at this batch
  c.warmup_epochs = 10.0         # the report's warm-up
  c.iwae_samples = 1000          # the final test IWAE bound, as pareto_vae_jax.evaluate's default
  c.eval_batch_size = 32         # k * batch = 32k decoded images per step, as evaluate.py keeps
  return c
