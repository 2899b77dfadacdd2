"""Predict page: single text with explanations, batch files."""
