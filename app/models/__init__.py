"""Models page: every version, roll back."""
