"""Soft prompt tuning for frozen T5 1.1 models in JAX/Flax."""

import os

# TensorFlow (behind seqio and TFDS) prints INFO/WARNING lines from C++ at import; our commands
# say what matters in one line. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
