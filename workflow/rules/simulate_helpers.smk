# Helpers of the simulate stage (rules in simulate.smk). Rule-free, so `snakemake --lint` accepts the
# functions; included from the Snakefile before the rule files. simulated_files() is in common.smk.


def simulate_runtime(wildcards):
    """Minutes for one file: generous for ~20 events/s on a loaded core, plus start-up."""
    return 5 + int(config["simulate"]["events_per_file"]) // 1000
