"""The model layer: the shared encoder with task heads, its checkpoints and versions, encoding and decoding.

Imports only types, tasks, progress, workspace and data."""
