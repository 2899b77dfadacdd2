"""Helpers shared by the tests (imported as `tests.helpers.*`; conftest.py only defines fixtures)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
TESTS = ROOT / "tests"
