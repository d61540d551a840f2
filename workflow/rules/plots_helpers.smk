# Helpers of the plots stage (rules in plots.smk): the figure list and the head-run files the plots
# read. Rule-free; included from the Snakefile before the rule files.

from hhfm.plots import FIGURES, FORMATS


def plot_targets():
    """Every figure file (PDF and PNG); `rule all` depends on these."""
    return [f"results/plots/{name}.{ext}" for name in FIGURES for ext in FORMATS]


def head_run_files(name):
    return expand("results/heads/{run}/{name}", run=head_runs(), name=name)
