"""Dev-set evaluation with the task's own postprocessors and metrics (seqio.Evaluator), and the
eval and infer jobs."""

from prompt_tuning.evaluation.evaluator import TaskEvaluator, selection_score, task_evaluator

__all__ = ["TaskEvaluator", "selection_score", "task_evaluator"]
