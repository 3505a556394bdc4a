"""Presets: each module's ``get_config()`` returns a complete training configuration.

Installed as ``pareto_vae_jax.configs``, so the command line takes a preset by name from any
directory (``--config=tpu``, ``--config=mnist_cvae_report``) as well as by path
(``--config=configs/tpu.py``); ``pareto_vae_jax.main.presets()`` lists them.
"""
