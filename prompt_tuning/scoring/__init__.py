"""Scoring targets given inputs with a frozen T5 and an optional prompt, like T5X's score_batch.

Library side of `python -m prompt_tuning.score`:

    examples = read_examples("in.jsonl", vocabulary)      # ids, or text tokenized + EOS
    results = score_examples(loaded, examples, prompt)    # [{"log_likelihood", "token_log_probs"}]
"""

from prompt_tuning.scoring.batches import chunks, make_batch
from prompt_tuning.scoring.examples import Example, check_ids_fit, read_examples
from prompt_tuning.scoring.score import choose_prompt, score_examples

__all__ = ["Example", "check_ids_fit", "choose_prompt", "chunks", "make_batch", "read_examples",
           "score_examples"]
