"""Session fixtures of the skim stage (see tests/conftest.py)."""
