"""Quality: task metrics vs baselines and single-task models, and the fine-tuning learning loop (bench/README.md)."""
