# rules of the skim stage (see README "Stage: skim"): one `skim_file` job per input ROOT file, then
# `skim` merges them into the dataset (+ cutflow, counts). Inputs follow config data.source:
# `simulation` (the simulate rule's files + sidecars, name `{sample}/ntuple_{index}`) or `opendata`
# (data.opendata_files, local paths or root:// URLs, name `opendata/{file stem}`). Runtime-only
# options (chunk_size, reader, file_compression) travel in HHFM_RUNTIME (common.smk): changing them reruns nothing.


rule skim_file:
    input:
        unpack(skim_file_input),
    output:
        h5=layout.SKIM_FILE,
        cutflow=layout.SKIM_FILE_CUTFLOW,
    log:
        "logs/skim_file/{name}.log",
    benchmark:
        "logs/benchmark/skim_file/{name}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config=stage_config("skim"),
        args=skim_file_args,
    shell:
        "python -m hhfm.cli skim --config '{params.config}' {params.args} "
        "--output {output.h5} --cutflow {output.cutflow} > {log} 2>&1"


rule skim:
    input:
        skim_merge_inputs,
    output:
        dataset=layout.DATASET,
        cutflow=layout.SKIM_CUTFLOW,
        counts=layout.SKIM_COUNTS,
    log:
        "logs/skim/merge.log",
    benchmark:
        "logs/benchmark/skim/merge.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        config=stage_config("skim"),
    shell:
        "python -m hhfm.cli merge-skim --config '{params.config}' --inputs {input} "
        "--output {output.dataset} --cutflow {output.cutflow} --counts {output.counts} > {log} 2>&1"
