"""hhfm: foundation-model fine-tuning for X -> HH -> bbbb, from simulation to pyhf limits."""

__version__ = "0.1.0"
