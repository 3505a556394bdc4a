r"""The default configuration (defined in pareto_vae_jax/config.py, so every install has it).

    python -m pareto_vae_jax.main --config=default --latent=pareto --conditional
"""

from pareto_vae_jax.config import get_config  # noqa: F401
