r"""The notes' sequence VAE (shared/seeds/003, section 4.1) on neural-network architectures.

A bidirectional LSTM encoder, the autoregressive LSTM decoder started from (x0, h0, c0) = f(z),
categorical types and a sigmoid (Bernoulli) feature, free bits over groups of the latent
(eq. 14). Sized to train on a 2-core CPU in at most 15 minutes (README, "Sequence VAE").

    python -m pareto_vae_jax.main --config=sequence_vae --latent=gaussian
    python -m pareto_vae_jax.main --config=sequence_vae --latent=iaf
"""

from pareto_vae_jax import config as default


def get_config():
  c = default.get_config()
  c.dataset = "architectures"
  c.architecture = "bilstm"      # encoder: both directions; decoder: the notes' LSTM
  c.likelihood = "sequence"      # categorical types + Bernoulli feature, masked past EOS
  c.sequence_feature = "sigmoid" # features normalized to [0, 1]
  c.latent = "gaussian"
  c.latent_dim = 16
  c.hidden = (128, 128)          # LSTM width, then the ReLU layers around it
  c.num_epochs = 20
  c.batch_size = 128
  c.learning_rate = 2e-3
  c.warmup_epochs = 5.0
  c.free_bits = 3.0              # nats per group: 12 nats in all, against a collapsing KL
  c.free_bits_groups = 4         # 4 groups of 4 dimensions (eq. 14)
  c.iwae_samples = 64
  c.eval_batch_size = 500
  c.summary_every_epochs = 0
  return c
