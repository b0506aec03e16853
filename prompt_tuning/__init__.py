"""Soft prompt tuning for frozen T5 1.1 models in JAX/Flax."""

__version__ = "0.1.0"
