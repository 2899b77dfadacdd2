"""The review queue: which items deserve a human look (queue) and the pool-scoring job that fills it (jobs)."""
