"""Data page: the tasks and their data."""
