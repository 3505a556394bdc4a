r"""The MNIST CVAE report's training setup (table 3) with the MLP encoder/decoder.

The report's conv net costs ~0.15 s a step on a 2-core CPU under XLA (docs/benchmarks.md), 35
minutes a run; this variant keeps everything else (2-D latent, batch 128, Adam 1e-3, 30 epochs,
10-epoch warm-up, BCE) and is what docs/RESULTS.md ran on CPU. On a GPU use
``--config=mnist_cvae_report``.

    python -m pareto_vae_jax.main --config=mnist_cvae_report_mlp --latent=gaussian --conditional
"""

from pareto_vae_jax import config as default


def get_config():
  c = default.get_config()
  c.architecture = "mlp"         # 512-256 MLP instead of tables 1-2 (the CPU substitute)
  c.latent_dim = 2               # table 3
  c.batch_size = 128             # table 3
  c.learning_rate = 1e-3         # table 3, Adam
  c.num_epochs = 30              # table 3
  c.warmup_epochs = 10.0         # table 3: beta(t) = min(1, t / 10 epochs)
  c.likelihood = "bernoulli"     # BCE summed per image (section 4.1)
  return c
