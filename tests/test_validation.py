"""Bad input: clear errors from concrete values, documented behaviour under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pareto_vae_jax as pvj

BAD = [
    (pvj.Gaussian, (0.0, -1.0), "scale"),
    (pvj.LogNormal, (0.0, 0.0), "scale"),
    (pvj.Pareto, (-0.5, 1.0), "alpha"),
    (pvj.Pareto, (1.0, 0.0), "scale"),
    (pvj.InverseGaussian, (0.0, 1.0), "mean"),
    (pvj.InverseGaussian, (1.0, np.nan), "shape"),
]


@pytest.mark.parametrize("family,params,name", BAD, ids=[f"{b[0].__name__}-{b[2]}" for b in BAD])
def test_non_positive_parameter_raises_value_error_naming_it(family, params, name):
  with pytest.raises(ValueError, match=rf"{family.__name__}: parameter '{name}' must be > 0"):
    family(*params)


def test_array_with_one_bad_entry_is_rejected_and_counted():
  with pytest.raises(ValueError, match=r"'alpha'.*at 1 position"):
    pvj.Pareto(jnp.array([1.0, 2.0, -3.0]))


def test_under_jit_values_are_not_checked_and_invalid_parameters_give_nan():
  out = jax.jit(lambda a: pvj.kl_pareto(a, 1.0))(-1.0)
  assert np.isnan(out)
  z = jax.jit(lambda a: pvj.rsample(jax.random.key(0), pvj.Pareto(a), (4,)))(-1.0)
  assert z.shape == (4,)  # no error is possible under jit; the values are meaningless


def test_real_parameters_accept_any_value_and_distributions_are_immutable():
  d = pvj.Gaussian(-1e6, 1.0)
  with pytest.raises(Exception, match="immutable"):
    d.loc = 0.0
  assert float(d.replace(loc=2.0).loc) == 2.0
  with pytest.raises(ValueError, match="'scale'"):
    d.replace(scale=-1.0)


def test_rsample_log_and_log_prob_log_reject_real_support_families():
  with pytest.raises(TypeError, match="positive family"):
    pvj.rsample_log(jax.random.key(0), pvj.Gaussian(0.0, 1.0))
  with pytest.raises(TypeError, match="positive family"):
    pvj.log_prob_log(pvj.Gaussian(0.0, 1.0), 0.0)


def test_unknown_family_name_lists_choices():
  with pytest.raises(ValueError, match="Unknown latent family 'cauchy'; valid choices") as info:
    pvj.family_info("cauchy")
  for name in ("gaussian", "lognormal", "pareto", "inverse_gaussian"):
    assert name in str(info.value)


def test_heads_map_any_real_to_their_floor_or_above():
  x = jnp.array([-1e4, -100.0, 0.0, 100.0, 1e4])
  for head, floor in ((pvj.softplus_floor, 1e-4), (pvj.elu_plus_one, 1e-4)):
    y = head(x)
    assert np.all(y >= floor) and np.all(np.isfinite(y))
    assert np.all(np.isfinite(jax.vmap(jax.grad(head))(x)))
  np.testing.assert_allclose(pvj.elu_plus_one(jnp.array([-1.0, 2.0]), floor=0.0), [np.exp(-1), 3])
