# rules of the pretrain stage (see README "Stage: pretrain"): train the ParT backbone on the jet task
# config["pretrain"]["task"]. Its params include the `model` section, so editing either retrains.
# checkpoint_last.pt (not a declared output, so Snakemake keeps it) lets a killed job resume.
# pretrain_dir() and pretrain_params() are in pretrain_helpers.smk.


rule pretrain:
    input:
        dataset="results/skim/dataset.h5",
    output:
        backbone=f"{pretrain_dir()}/backbone.pt",
        metrics=f"{pretrain_dir()}/metrics.csv",
        scores=f"{pretrain_dir()}/jet_scores.parquet",
    log:
        "logs/pretrain/pretrain.log",
    benchmark:
        "logs/benchmark/pretrain/pretrain.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=720,
    params:
        json=lambda wildcards: pretrain_params(),
        outdir=lambda wildcards, output: os.path.dirname(output.backbone),
    shell:
        "hhfm pretrain --params '{params.json}' --dataset {input.dataset} --outdir {params.outdir} "
        "--threads {threads} > {log} 2>&1"
