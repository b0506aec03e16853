"""The logical axis rules: T5X's defaults, and additional rules that take precedence."""

from __future__ import annotations

import flax.linen as nn
import pytest
from jax.sharding import PartitionSpec as P

from prompt_tuning import errors
from prompt_tuning.model import t5_1_1
from prompt_tuning.model.params import logical_axes
from prompt_tuning.partitioning import PartitioningConfig

QUERY = ("encoder", "layers_0", "attention", "query", "kernel")  # ('embed', 'joined_kv')
NORM = ("encoder", "encoder_norm", "scale")                        # ('embed',)


def _spec(rules, path):
    specs = nn.logical_to_mesh(logical_axes(t5_1_1("tiny")), rules)
    for key in path:
        specs = specs[key]
    return specs


def test_default_rules_replicate_embed_and_split_heads_over_model():
    rules = PartitioningConfig().rules()
    assert _spec(rules, QUERY) == P(None, "model")
    assert _spec(rules, NORM) == P(None)


def test_an_additional_rule_overrides_the_standard_one():
    """("embed", "data") is 2-D parameter sharding: `embed` split over 'data'."""
    rules = PartitioningConfig(additional_rules=[("embed", "data")]).rules()
    assert rules[0] == ("embed", "data")
    assert _spec(rules, QUERY) == P("data", "model")
    assert _spec(rules, NORM) == P("data")


@pytest.mark.parametrize("kwargs, message", [
    ({"num_partitions": 0}, "NUM_PARTITIONS must be a positive integer"),
    ({"parameter_partitioning_dims": 3}, "must each be 1 or 2"),
    ({"additional_rules": [("embed",)]}, "must be a pair"),
    ({"additional_rules": [("embed", 5)]}, "mesh axis must be None, a name"),
])
def test_bad_settings_are_refused_when_the_config_is_built(kwargs, message):
    with pytest.raises(errors.UsageError, match=message):
        PartitioningConfig(**kwargs)
