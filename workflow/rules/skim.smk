# rules of the skim stage (see README "Stage: skim"): one `skim_file` job per input ROOT file, then
# `skim` merges them into results/skim/dataset.h5 (+ cutflow.csv, counts.csv).
# Inputs follow config["data"]["source"]: `simulation` (the simulate rule's files + sidecars, name
# `{sample}/ntuple_{index}`) or `opendata` (config data.opendata_files, local paths or root:// URLs,
# name `opendata/{file stem}`).

import os


def _is_url(path):
    return "://" in path


def skim_sources():
    """{name: ROOT file path or URL} of every file the skim reads."""
    if config["data"]["source"] == "simulation":
        return {
            f[len("results/simulation/") : -len(".root")]: f for f in simulated_files()
        }
    sources = {}
    for path in config["data"]["opendata_files"]:
        name = "opendata/" + os.path.basename(path).removesuffix(".root")
        if name in sources:
            raise ValueError(
                f"data.opendata_files: two files named {name}: {sources[name]} and {path}"
            )
        sources[name] = path
    if not sources:
        raise ValueError("data.source is 'opendata' but data.opendata_files is empty")
    return sources


def skim_file_input(wildcards):
    """Local inputs of one skim job (URLs are read by uproot/XRootD, not tracked by Snakemake)."""
    source = skim_sources()[wildcards.name]
    files = {} if _is_url(source) else {"root": source}
    if config["data"]["source"] == "simulation":
        files["sidecar"] = source.removesuffix(".root") + ".json"
    return files


def skim_file_args(wildcards, input):
    source = skim_sources()[wildcards.name]
    sidecar = f" --sidecar {input.sidecar}" if "sidecar" in input.keys() else ""
    return f"--input {source}{sidecar}"


rule skim_file:
    input:
        unpack(skim_file_input),
    output:
        h5="results/skim/files/{name}.h5",
        cutflow="results/skim/files/{name}.cutflow.json",
    log:
        "logs/skim_file/{name}.log",
    benchmark:
        "logs/benchmark/skim_file/{name}.tsv"
    resources:
        mem_mb=4000,
    params:
        skim=lambda wildcards: stage_params("skim"),
        args=skim_file_args,
    shell:
        "hhfm skim --params '{params.skim}' {params.args} --output {output.h5} "
        "--cutflow {output.cutflow} > {log} 2>&1"


rule skim:
    input:
        lambda wildcards: expand(
            "results/skim/files/{name}.h5", name=sorted(skim_sources())
        ),
    output:
        dataset="results/skim/dataset.h5",
        cutflow="results/skim/cutflow.csv",
        counts="results/skim/counts.csv",
    log:
        "logs/skim/merge.log",
    benchmark:
        "logs/benchmark/skim/merge.tsv"
    resources:
        mem_mb=8000,
    params:
        skim=lambda wildcards: stage_params("skim"),
    shell:
        "hhfm merge-skim --params '{params.skim}' --inputs {input} --output {output.dataset} "
        "--cutflow {output.cutflow} --counts {output.counts} > {log} 2>&1"
