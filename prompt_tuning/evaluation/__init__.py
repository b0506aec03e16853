"""Dev-set evaluation with the task's own postprocessors and metrics (seqio.Evaluator)."""
