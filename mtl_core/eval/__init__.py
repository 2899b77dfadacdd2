"""Evaluation: metrics on the test splits and old-vs-new comparisons of model answers."""
