"""Train page: start a round, follow it, compare old and new, promote or discard."""
