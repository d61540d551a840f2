"""Session fixtures of the pretrain stage (see tests/conftest.py)."""
