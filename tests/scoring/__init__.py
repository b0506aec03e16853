"""Tests of `python -m prompt_tuning.score`, run as a user runs it."""
