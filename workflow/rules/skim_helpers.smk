# Helpers of the skim stage (rules in skim.smk): which ROOT files the skim reads and how each
# `skim_file` job gets them. Rule-free; included from the Snakefile before the rule files.

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
        name = f"opendata/{os.path.basename(path).removesuffix('.root')}"
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
        files["sidecar"] = f"{source.removesuffix('.root')}.json"
    return files


def skim_file_args(wildcards, input):
    source = skim_sources()[wildcards.name]
    sidecar = f" --sidecar {input.sidecar}" if "sidecar" in input.keys() else ""
    return f"--input {source}{sidecar}"


def skim_merge_inputs(wildcards):
    """Per-file skims that `skim` merges, one per entry of skim_sources()."""
    return expand("results/skim/files/{name}.h5", name=sorted(skim_sources()))
