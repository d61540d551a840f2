"""Error types every stage raises for bad input; the CLI prints them as one clear line."""


class HhfmError(Exception):
    """A user-facing error: bad input file, missing branch, invalid setting, empty selection."""


class InputError(HhfmError):
    """A problem with an input file; the message names the file (and the branch/field)."""


class ConfigError(HhfmError):
    """An invalid configuration value; the message names the key."""
