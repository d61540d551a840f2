# Helpers shared by all rule files -- config checking, stage parameters and the target lists of
# every stage. Paths here are the on-disk contract listed in README.md ("Architecture").

import json

import jsonschema
import yaml

from snakemake.exceptions import WorkflowError


def check_config(cfg, schema_path):
    """Validate `cfg` against the JSON schema; raise one error listing every bad key by name."""
    with open(os.path.join(workflow.basedir, schema_path)) as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.path))):
        key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        problems.append(f"  config key '{key}': {err.message}")
    if problems:
        raise WorkflowError(
            "invalid configuration (config.yaml + --configfile/--config overlays), "
            f"checked against {schema_path}:\n" + "\n".join(problems)
        )


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


#: stage targets from last to first; `all` builds the first one that is defined
STAGE_TARGETS = [
    "plots",
    "limits",
    "evaluate",
    "heads",
    "pretrain",
    "skim",
    "simulation",
]


def final_targets():
    """What the default target `all` needs: every plot (`plot_targets()` from plots.smk), or, while a stage is
    missing, what the furthest defined stage target needs."""
    if "plot_targets" in globals():
        return plot_targets()
    defined = {r.name: r for r in workflow.rules}
    for name in STAGE_TARGETS:
        rule_ = defined.get(name)
        if rule_ is None:
            continue
        if rule_.output and not rule_.has_wildcards():
            return rule_.output
        if not rule_.output:
            return rule_.input
    return simulated_files()
