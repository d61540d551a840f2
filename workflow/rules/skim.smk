# rules of the skim stage (see README "Stage: skim"): one `skim_file` job per input ROOT file, then
# `skim` merges them into results/skim/dataset.h5 (+ cutflow.csv, counts.csv).
# Inputs follow config["data"]["source"]: `simulation` (the simulate rule's files + sidecars, name
# `{sample}/ntuple_{index}`) or `opendata` (config data.opendata_files, local paths or root:// URLs,
# name `opendata/{file stem}`).
# skim_sources(), skim_file_input() etc. are in skim_helpers.smk.


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
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        skim=lambda wildcards: stage_params("skim"),
        args=skim_file_args,
    shell:
        "hhfm skim --params '{params.skim}' {params.args} --output {output.h5} "
        "--cutflow {output.cutflow} > {log} 2>&1"


rule skim:
    input:
        skim_merge_inputs,
    output:
        dataset="results/skim/dataset.h5",
        cutflow="results/skim/cutflow.csv",
        counts="results/skim/counts.csv",
    log:
        "logs/skim/merge.log",
    benchmark:
        "logs/benchmark/skim/merge.tsv"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        skim=lambda wildcards: stage_params("skim"),
    shell:
        "hhfm merge-skim --params '{params.skim}' --inputs {input} --output {output.dataset} "
        "--cutflow {output.cutflow} --counts {output.counts} > {log} 2>&1"
