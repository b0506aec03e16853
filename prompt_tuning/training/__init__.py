"""Training a prompt: the config tree, freezing, the optimizer recipe, the loss, the train step,
TensorBoard scalars and the loop. Evaluation comes in from outside (`loop.Evaluator`)."""
