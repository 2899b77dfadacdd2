"""The multi-task lab: which tasks help each other, and how to train them together (docs/LAB.md)."""
