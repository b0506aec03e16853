"""The names of a batch's features, shared by the data pipeline and everything that reads a batch.

Each is `[batch, length]` int32 (T5X's `EncDecFeatureConverter` names), and `PROMPT_IDS` is
`[batch]` int32: which prompt of a table each example uses (multi-task runs, mixed batches).
"""

FEATURES = ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens",
            "decoder_loss_weights")
PROMPT_IDS = "prompt_ids"
