"""Task data: loaders for built-in corpora and user files, dedup, hash splits, a JSONL cache."""

from mtl_core.data.errors import DataSourceError
from mtl_core.data.examples import Example
from mtl_core.data.loaders import LOADERS, load_examples, register_loader
from mtl_core.data.prepare import counts_table, prepare_all, prepare_task
from mtl_core.data.splits import assign_split, dedupe, split_examples

__all__ = [
    "LOADERS",
    "DataSourceError",
    "Example",
    "assign_split",
    "counts_table",
    "dedupe",
    "load_examples",
    "prepare_all",
    "prepare_task",
    "register_loader",
    "split_examples",
]
