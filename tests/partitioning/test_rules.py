"""The logical axis rules: T5X's defaults, and additional rules that take precedence."""

from __future__ import annotations

import flax.linen as nn
import jax
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
    ({"num_partitions": 2, "model_parallel_submesh": (1, 1, 1, 2)},
     "give one of num_partitions, model_parallel_submesh and mesh_shape, not "
     "model_parallel_submesh and num_partitions"),
    ({"model_parallel_submesh": (4, 4, 2)}, r"must be 4 positive integers \(x, y, z, core\)"),
    ({"mesh_shape": (0, 2)}, r"mesh_shape must be \(data, model\)"),
])
def test_bad_settings_are_refused_when_the_config_is_built(kwargs, message):
    with pytest.raises(errors.UsageError, match=message):
        PartitioningConfig(**kwargs)


def test_the_model_axis_from_each_way_of_giving_it():
    assert PartitioningConfig(num_partitions=4).model_parallelism == 4
    assert PartitioningConfig(model_parallel_submesh=(4, 4, 1, 2)).model_parallelism == 32
    assert PartitioningConfig(mesh_shape=(-1, 8)).model_parallelism == 8
    mesh = PartitioningConfig(mesh_shape=(1, 1)).mesh(jax.devices()[:1])
    assert dict(mesh.shape) == {"data": 1, "model": 1}
    with pytest.raises(errors.UsageError, match=r"mesh_shape \(2, 1\) needs 2 devices, but "
                                                "there are 1"):
        PartitioningConfig(mesh_shape=(2, 1)).mesh(jax.devices()[:1])


def test_t5x_partitioner_names_and_rule_list_bind_the_config():
    """T5X's gin lines work unchanged: `PjitPartitioner`/`ModelBasedPjitPartitioner` are this
    config, and `logical_axis_rules = @partitioning.standard_logical_axis_rules()` with its own
    bindings gives the rule list."""
    import gin  # pylint: disable=import-outside-toplevel

    gin.clear_config()
    try:
        gin.parse_config("""
from __gin__ import dynamic_registration
from prompt_tuning import partitioning
partitioning.PjitPartitioner.num_partitions = 4
partitioning.ModelBasedPjitPartitioner.logical_axis_rules = \\
    @partitioning.standard_logical_axis_rules()
partitioning.standard_logical_axis_rules.parameter_partitioning_dims = 2
""")
        config = gin.get_configurable(PartitioningConfig)()
    finally:
        gin.clear_config()
    assert config.num_partitions == 4
    assert _spec(config.rules(), QUERY) == P("data", "model")  # 2-D parameter sharding


def test_a_whole_rule_list_replaces_the_standard_settings():
    rules = [("batch", "data"), ("embed", None), ("joined_kv", "model"), ("vocab", "model"),
             ("mlp", "model"), ("heads", "model"), ("kv", None), ("relpos_buckets", None)]
    assert PartitioningConfig(logical_axis_rules=rules).rules() == rules
    with pytest.raises(errors.UsageError, match="not both"):
        PartitioningConfig(logical_axis_rules=rules, parameter_partitioning_dims=2)
    with pytest.raises(errors.UsageError, match="logical_axis_rules must be a sequence"):
        PartitioningConfig(logical_axis_rules="embed")


def test_a_parameter_axis_without_a_rule_is_one_clear_line():
    """Flax would replicate an axis no rule names; we say which parameter and axis."""
    from prompt_tuning.partitioning import create_mesh, param_shardings  # pylint: disable=import-outside-toplevel

    rules = [r for r in PartitioningConfig().rules() if r[0] != "mlp"]
    mesh = create_mesh(1, jax.devices()[:1])
    with pytest.raises(errors.UsageError) as e:
        param_shardings(t5_1_1("tiny"), mesh, rules)
    assert str(e.value) == (
        "parameter decoder/layers_0/mlp/wi_0/kernel has logical axis 'mlp', which no "
        "partitioning rule names; add one, e.g. additional_rules = [('mlp', None)].")
