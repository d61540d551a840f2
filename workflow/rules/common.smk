# Helpers shared by the rule files: stage parameters and the target lists of every stage.
# Paths here are the on-disk contract listed in README.md ("Architecture").

import json


def stage_params(section):
    """The config section of a stage as a JSON string, for `hhfm <stage> --params`."""
    return json.dumps({"seed": config["seed"], **config[section]}, sort_keys=True)


def fmt_fraction(value):
    """Training-data fraction as it appears in file names (`%g`: 0.01, 0.1, 1)."""
    return f"{float(value):g}"


def simulated_samples():
    sim = config["simulate"]
    signal = [f"GravitonHH_M{int(m)}" for m in sim["signal_masses"]]
    qcd = [f"QCD_Pt_{s}" for s in sim["qcd_slices"]]
    return signal + qcd


def simulated_files():
    return expand(
        "results/simulation/{sample}/ntuple_{index}.root",
        sample=simulated_samples(),
        index=range(config["simulate"]["files_per_sample"]),
    )


def head_runs():
    """(model, fraction, seed) triples of every head run as path stems `{model}/f{fraction}_s{seed}`."""
    h = config["heads"]
    return expand(
        "{model}/f{fraction}_s{seed}",
        model=h["models"],
        fraction=[fmt_fraction(f) for f in h["fractions"]],
        seed=h["seeds"],
    )


def all_targets():
    return rules.plots_all.input if "plots_all" in rules.__dict__ else simulated_files()
