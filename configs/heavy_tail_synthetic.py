r"""The heavy-tail study on its synthetic 2-D LogNormal data (its table 3a).

Latent 2, lr 3e-4, 50 epochs, batch 100, beta 0.01, loss 1/2 (MSE + beta KL) with MATLAB's
``mse`` (half the summed squared error, ``matlab_mse``; see ``heavy_tail_study``), LeakyReLU
0.01 (its section 3.1); small initial weights of the encoder's last layer, which the study
needed for a stable LogNormal latent on these raw inputs (section 3.2, figure 10).

    python -m pareto_vae_jax.main --config=heavy_tail_synthetic --latent=lognormal
"""

from pareto_vae_jax import config as default


def get_config():
  c = default.get_config()
  c.dataset = "synthetic_lognormal"
  c.hidden = (64, 32)            # a small MLP for 2-D data (the study's figure 8 is small too)
  c.latent_dim = 2               # table 3a
  c.learning_rate = 3e-4         # table 3a
  c.num_epochs = 50              # table 3a
  c.batch_size = 100             # table 3a
  c.beta = 0.01                  # table 3a
  c.warmup_epochs = 0.0          # a constant beta
  c.likelihood = "matlab_mse"    # 1/2 (MATLAB's mse + beta KL), eq. 3
  c.activation = "leaky_relu"    # section 3.1
  c.head_init_scale = 0.01       # section 3.2: smaller initial weights
  c.decoder_input = "z"          # the study decodes z itself
  c.eval_batch_size = 1000
  return c
