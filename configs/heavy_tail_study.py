r"""The heavy-tailed latent study at its own scale: latent 10, lr 3e-4, batch 512, beta 0.01, MSE.

    python -m pareto_vae_jax.main --config=configs/heavy_tail_study.py --latent=lognormal
    python -m pareto_vae_jax.main --config=configs/heavy_tail_study.py --latent=inverse_gaussian
    python -m pareto_vae_jax.main --config=configs/heavy_tail_study.py --latent=pareto

Its loss is 1/2 (MSE + beta KL) with the MSE averaged over pixels (section 2.3, eq. 3).
"""

from pareto_vae_jax import config as default


def get_config():
  c = default.get_config()
  c.latent_dim = 10              # the study's latent size
  c.learning_rate = 3e-4
  c.num_epochs = 100
  c.batch_size = 512
  c.beta = 0.01
  c.warmup_epochs = 0.0          # the study uses a constant beta
  c.likelihood = "mse"
  return c
