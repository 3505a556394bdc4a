r"""MNIST on one or more GPU hosts: the report's conv net, a global batch of 512, 100 epochs.

    bash launch/gpu.sh
    python -m pareto_vae_jax.main --config=gpu --latent=pareto --conditional
    sbatch launch/gpu_slurm.sbatch

Not yet run on a GPU: the learning rate is the default's, untuned for this batch.
"""

from pareto_vae_jax import config as default


def get_config():
  c = default.get_config()
  c.architecture = "conv"        # the MNIST report's tables 1-2
  c.batch_size = 512             # global: a multiple of 1, 2, 4, ..., 512 GPUs
  c.num_epochs = 100             # 117 steps per epoch at this batch
  c.warmup_epochs = 10.0         # the report's warm-up
  c.iwae_samples = 1000          # the final test IWAE bound, as pareto_vae_jax.evaluate's default
  c.eval_batch_size = 32         # k * batch = 32k decoded images per step, as evaluate.py keeps
  return c
