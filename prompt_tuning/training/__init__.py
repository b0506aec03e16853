"""Freezing, the optimizer recipe, losses, the train step and the loop."""
