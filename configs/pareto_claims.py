r"""The Pareto guide's claims on data with known heavy-tailed factors (docs/RESULTS.md).

synthetic_pareto: 16-D observations mixed from 4 independent Pareto factors with tail indices
(1.5, 2, 3, 5), kept for evaluation. A 4-D latent, unconditional (the labels are derived from
the factors), Gaussian likelihood; compare families with

    python -m pareto_vae_jax.main --config=pareto_claims --latent=pareto
    python -m pareto_vae_jax.claims --workdir=runs/synthetic_pareto-pareto-vae-standard-seed0
"""

from pareto_vae_jax import config as default


def get_config():
  c = default.get_config()
  c.dataset = "synthetic_pareto"
  c.hidden = (128, 64)
  c.latent_dim = 4               # as many as the true factors
  c.num_epochs = 50
  c.batch_size = 100
  c.learning_rate = 1e-3
  c.likelihood = "gaussian"      # observation noise std 0.1 in the data; 0.5 keeps it stable
  c.gaussian_scale = 0.5
  c.warmup_epochs = 5.0
  c.head_init_scale = 0.01       # heavy-tailed raw inputs: start every posterior narrow
  c.eval_batch_size = 1000
  return c
