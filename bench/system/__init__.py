"""System: cold start, concurrent app sessions, store and review-queue speed (bench/README.md)."""
