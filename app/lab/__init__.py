"""Lab page: compare multi-task training strategies (Δm%, gradient conflict, task affinity), adopt a winner."""
