"""The single error type of the data package."""


class DataSourceError(ValueError):
    """A task's data cannot be loaded; the message names the file, row or field and the fix."""
