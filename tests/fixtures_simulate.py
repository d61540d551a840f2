"""Session fixtures of the simulate stage (see tests/conftest.py)."""
