"""The sequence VAE's networks (the notes, section 4.1): an LSTM encoder over a sequence and an
autoregressive LSTM decoder, registered as the architectures ``lstm`` and ``bilstm``.

A sequence is ``x`` of shape ``[T, d]`` (``sequences``): row t holds a one-hot type over the
first ``V = d - 1`` entries (the last type is end-of-sequence) and one feature value; padding
rows are all zero, so a sequence's mask is ``x[..., :V].sum(-1) > 0`` (its steps and its EOS).

Encoder (``lstm``: one direction; ``bilstm``: both, the two final states concatenated): the
LSTM reads the sequence (and the label, repeated at every step, for a CVAE) up to its length;
its final hidden state goes through ReLU layers of ``hidden[1:]`` to the latent head's inputs.

Decoder: ``z`` (and the label) -> ReLU layers of ``hidden[1:]`` -> ``x0`` (a learned first
input), ``h0`` and ``c0``; an LSTM of width ``hidden[0]`` started from ``(h0, c0)``; a linear
layer at every step to ``d`` outputs: ``V`` type logits (softmax) and the feature's
pre-activation (``sigmoid`` for features in [0, 1], ``relu`` otherwise: ``feature_activation``).
Step t's output predicts row t.

* Teacher forcing (training, with ``target``): the inputs are ``x0, x[0], ..., x[T-2]``, the
  true previous rows.
* Free running (``target=None``): one ``lax.scan`` that feeds back the argmax type (one-hot)
  and the activated predicted feature; rows after the first generated EOS are zero, as padding
  is in the data.

The LSTM is written out (one fused matmul per step over ``[input, h]``) rather than Flax's
cell, so the same parameters serve a teacher-forced scan and the free-running scan, both plain
``lax.scan`` over arrays. Weights and biases are U(-1/sqrt(H), 1/sqrt(H)), PyTorch's LSTM
initialization.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from pareto_vae_jax import models

Array = jax.Array

FEATURE_ACTIVATIONS = ("sigmoid", "relu")


def sequence_mask(x: Array) -> Array:
  """``[..., T]`` True at a sequence's steps and its EOS, False at padding."""
  return jnp.sum(x[..., :-1], -1) > 0


def activate_feature(pre: Array, activation: str) -> Array:
  """The feature value from the decoder's pre-activation."""
  if activation == "sigmoid":
    return jax.nn.sigmoid(pre)
  if activation == "relu":
    return jax.nn.relu(pre)
  raise ValueError(f"Unknown sequence_feature '{activation}'; valid: "
                   f"{', '.join(FEATURE_ACTIVATIONS)}.")


def lstm_step(weights: tuple[Array, Array], carry: tuple[Array, Array],
              inputs: Array) -> tuple[Array, Array]:
  """One LSTM step: gates from ``[inputs, h] @ W + b`` in the order input, forget, cell, output."""
  kernel, bias = weights
  h, c = carry
  gates = jnp.concatenate([inputs, h], -1).astype(kernel.dtype) @ kernel + bias
  i, f, g, o = jnp.split(gates.astype(jnp.float32), 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  h = jax.nn.sigmoid(o) * jnp.tanh(c)
  return h, c


class LSTMWeights(nn.Module):
  """The parameters of one LSTM of width ``features`` over ``in_features`` inputs."""

  features: int
  in_features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self) -> tuple[Array, Array]:
    bound = 1.0 / math.sqrt(self.features)
    uniform = lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -bound, bound)
    kernel = self.param("kernel", uniform, (self.in_features + self.features, 4 * self.features))
    bias = self.param("bias", uniform, (4 * self.features,))
    return kernel.astype(self.dtype), bias.astype(self.dtype)


def _reverse_within_length(x: Array, lengths: Array) -> Array:
  """Each sequence's first ``lengths[b]`` rows in reverse order; padding rows stay put."""
  t = jnp.arange(x.shape[1])
  index = jnp.where(t[None] < lengths[:, None], lengths[:, None] - 1 - t[None], t[None])
  return jnp.take_along_axis(x, index[..., None], axis=1)


def _final_state(weights, x: Array, lengths: Array, width: int) -> Array:
  """The LSTM's hidden state after each sequence's last step (its carry stops there)."""
  zeros = jnp.zeros((x.shape[0], width), jnp.float32)

  def step(carry, xs):
    inputs, t = xs
    new = lstm_step(weights, carry, inputs)
    keep = (t < lengths)[:, None]
    return tuple(jnp.where(keep, n, o) for n, o in zip(new, carry)), None

  (h, _), _ = jax.lax.scan(step, (zeros, zeros), (jnp.swapaxes(x, 0, 1), jnp.arange(x.shape[1])))
  return h


class SequenceEncoder(nn.Module):
  """``(x [B, T, d], label or None) -> [B, num_outputs]``: an LSTM (or two) over each sequence."""

  hidden: Sequence[int]
  num_outputs: int
  bidirectional: bool = False
  head_init_scale: float = 1.0
  dtype: Any = jnp.float32
  weight_init: str = "fan_in_uniform"

  @nn.compact
  def __call__(self, x: Array, c: Array | None) -> Array:
    width = self.hidden[0]
    lengths = jnp.sum(sequence_mask(x), -1)
    inputs = x.astype(jnp.float32)
    if c is not None:
      inputs = jnp.concatenate(
          [inputs, jnp.broadcast_to(c[:, None], (x.shape[0], x.shape[1], c.shape[-1]))], -1)
    forward = LSTMWeights(width, inputs.shape[-1], self.dtype, name="forward")()
    h = _final_state(forward, inputs, lengths, width)
    if self.bidirectional:
      backward = LSTMWeights(width, inputs.shape[-1], self.dtype, name="backward")()
      h = jnp.concatenate(
          [h, _final_state(backward, _reverse_within_length(inputs, lengths), lengths, width)], -1)
    for w in self.hidden[1:]:
      h = nn.relu(models.dense(w, h.shape[-1], self.weight_init, self.dtype)(h))
    head = models.dense(self.num_outputs, h.shape[-1], self.weight_init, self.dtype,
                        self.head_init_scale)
    return head(h).astype(jnp.float32)


class SequenceDecoder(nn.Module):
  """``(z, label or None, target or None) -> [B, T, d]`` outputs: type logits and the feature's
  pre-activation per step; teacher-forced on ``target``, free-running without it."""

  hidden: Sequence[int]
  output_shape: tuple[int, int]
  feature_activation: str = "sigmoid"
  dtype: Any = jnp.float32
  weight_init: str = "fan_in_uniform"

  teacher_forced = True  # models.VAE.decode passes the target sequence

  @nn.compact
  def __call__(self, z: Array, c: Array | None, target: Array | None = None) -> Array:
    steps, d = self.output_shape
    width = self.hidden[0]
    h = z if c is None else jnp.concatenate([z, c], -1)
    for w in self.hidden[1:]:
      h = nn.relu(models.dense(w, h.shape[-1], self.weight_init, self.dtype)(h))
    start = models.dense(d + 2 * width, h.shape[-1], self.weight_init, self.dtype)(h)
    start = start.astype(jnp.float32)
    x0, h0, c0 = start[:, :d], start[:, d:d + width], start[:, d + width:]
    weights = LSTMWeights(width, d, self.dtype, name="lstm")()
    out_kernel = self.param("out_kernel", models.kernel_init(self.weight_init), (width, d))
    out_bias = self.param("out_bias", models.bias_init(self.weight_init, width), (d,))
    readout = lambda hs: (hs.astype(self.dtype) @ out_kernel.astype(self.dtype) + out_bias.astype(
        self.dtype)).astype(jnp.float32)
    if target is not None:
      return self._teacher_forced(weights, readout, x0, (h0, c0), target.astype(jnp.float32))
    return self._free_running(weights, readout, x0, (h0, c0), steps)

  def _teacher_forced(self, weights, readout, x0, carry, target):
    inputs = jnp.concatenate([x0[:, None], target[:, :-1]], 1)

    def step(carry, inputs):
      carry = lstm_step(weights, carry, inputs)
      return carry, carry[0]

    _, hs = jax.lax.scan(step, carry, jnp.swapaxes(inputs, 0, 1))
    return readout(jnp.swapaxes(hs, 0, 1))

  def _free_running(self, weights, readout, x0, carry, steps):
    num_types = x0.shape[-1] - 1
    eos = num_types - 1

    def step(state, _):
      carry, inputs, ended = state
      carry = lstm_step(weights, carry, inputs)
      out = readout(carry[0])
      kind = jnp.argmax(out[:, :num_types], -1)
      fed_back = jnp.concatenate([
          jax.nn.one_hot(kind, num_types),
          activate_feature(out[:, num_types:], self.feature_activation)
      ], -1)
      out = jnp.where(ended[:, None], 0.0, out)  # after EOS: padding
      return (carry, fed_back, ended | (kind == eos)), out

    ended = jnp.zeros((x0.shape[0],), bool)
    _, outs = jax.lax.scan(step, (carry, x0, ended), None, length=steps)
    return jnp.swapaxes(outs, 0, 1)


def _sequence_architecture(bidirectional: bool):

  def build(vae, num_raw: int) -> tuple[nn.Module, nn.Module]:
    if len(vae.input_shape) != 2:
      raise ValueError(f"architecture 'lstm'/'bilstm' needs sequences [T, d]; the data's examples "
                       f"have shape {tuple(vae.input_shape)}.")
    return (SequenceEncoder(vae.hidden, num_raw, bidirectional, vae.head_init_scale, vae.dtype,
                            vae.weight_init),
            SequenceDecoder(vae.hidden, tuple(vae.input_shape), vae.sequence_feature, vae.dtype,
                            vae.weight_init))

  return build


models.register_architecture("lstm", _sequence_architecture(bidirectional=False), sequences=True)
models.register_architecture("bilstm", _sequence_architecture(bidirectional=True), sequences=True)
