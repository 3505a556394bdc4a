r"""The MNIST CVAE report at its own scale (its tables 1-3): conv net, 2-D latent, 30 epochs.

VAE and CVAE with a Gaussian latent, as in the report:

    python -m pareto_vae_jax.main --config=mnist_cvae_report --latent=gaussian
    python -m pareto_vae_jax.main --config=mnist_cvae_report --latent=gaussian --conditional

The same with a Pareto latent and the learned conditional prior:

    python -m pareto_vae_jax.main --config=mnist_cvae_report --latent=pareto --conditional --prior=learned
"""

from pareto_vae_jax import config as default


def get_config():
  c = default.get_config()
  c.architecture = "conv"        # table 1 (encoder) and table 2 (decoder)
  c.latent_dim = 2               # table 3
  c.batch_size = 128             # table 3
  c.learning_rate = 1e-3         # table 3, Adam
  c.num_epochs = 30              # table 3
  c.warmup_epochs = 10.0         # table 3: beta(t) = min(1, t / 10 epochs)
  c.likelihood = "bernoulli"     # BCE summed per image (section 4.1)
  return c
