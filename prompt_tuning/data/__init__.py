"""Data: the T5 vocabulary, seqio tasks (SuperGLUE, GLUE, built-in), postprocessors and metrics.

Importing `prompt_tuning.data.tasks` registers every task and mixture with seqio.
"""
