"""Training: the multi-task loop, loss weighting and sampling, distillation, and the train-a-version recipe."""
