"""Heads: maps from unconstrained network outputs to valid (positive) parameters.

Default head per family parameter (``FamilyInfo.heads``):

| family          | parameter | head                           |
|-----------------|-----------|--------------------------------|
| Gaussian        | loc       | identity                       |
| Gaussian        | scale     | softplus, floor 1e-4           |
| LogNormal       | loc       | identity                       |
| LogNormal       | scale     | softplus, floor 1e-4           |
| Pareto          | alpha     | softplus, floor 1e-3           |
| Pareto          | scale     | softplus, floor 1e-3           |
| InverseGaussian | mean      | ELU+1, floor 1e-4 (the study)  |
| InverseGaussian | shape     | ELU+1, floor 1e-4 (the study)  |
| StudentT        | df        | softplus, floor 0.5            |
| Weibull         | k         | softplus, floor 0.5            |
| SymmetricPareto | alpha     | softplus, floor 2              |

The floors keep a parameter inside the range where sampling, densities and KLs are tested to be
finite (see the README), whatever the network outputs.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def softplus_floor(x: ArrayLike, *, floor: float = 1e-4) -> Array:
  """``floor + softplus(x)``: positive, smooth, and linear for large ``x``.

  Args:
    x: unconstrained values.
    floor: the smallest value the head can return (reached as ``x -> -inf``).

  Returns:
    An array like ``x`` with values in ``(floor, inf)``.
  """
  return floor + jax.nn.softplus(x)


def elu_plus_one(x: ArrayLike, *, floor: float = 1e-4) -> Array:
  """``ELU(x) + 1`` (``exp(x)`` for ``x < 0``, ``x + 1`` otherwise), plus a floor.

  The study of heavy-tailed latents uses ELU+1 for the Inverse-Gaussian parameters; the
  floor stops ``exp(x)`` from underflowing to 0 in float32 for ``x < -87``.

  Args:
    x: unconstrained values.
    floor: added to the result.

  Returns:
    An array like ``x`` with values in ``(floor, inf)``.
  """
  return floor + jax.nn.elu(x) + 1.0


def identity(x: ArrayLike) -> Array:
  """The head of a real-valued parameter (a location)."""
  return jnp.asarray(x)


HEADS: dict[str, Callable[[ArrayLike], Array]] = {
    "identity": identity,
    "softplus": softplus_floor,
    "softplus_1e-3": lambda x: softplus_floor(x, floor=1e-3),
    "softplus_0.5": lambda x: softplus_floor(x, floor=0.5),
    "softplus_2": lambda x: softplus_floor(x, floor=2.0),
    "elu_plus_one": elu_plus_one,
}


def apply_head(name: str, x: ArrayLike) -> Array:
  """Applies the head registered under ``name`` (see ``HEADS``)."""
  try:
    return HEADS[name](x)
  except KeyError:
    raise ValueError(f"Unknown head '{name}'; valid choices: {', '.join(HEADS)}.") from None
