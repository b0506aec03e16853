"""T5 1.1 in Flax linen with T5X parameter names and logical axes."""

from prompt_tuning.model.config import SIZES, T5Config, t5_1_1
from prompt_tuning.model.decoder import DecodingCache
from prompt_tuning.model.network import Transformer
from prompt_tuning.model.seams import Combiner, LayerHook
from prompt_tuning.model.params import abstract_params, compute_params, init_params, param_count

__all__ = ["SIZES", "T5Config", "t5_1_1", "Combiner", "DecodingCache", "LayerHook",
           "Transformer", "abstract_params", "compute_params", "init_params", "param_count"]
