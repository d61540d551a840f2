# rules of the represent stage (see README "Stage: represent"): what fine-tuning does to the
# representation. CKA between the pretrained backbone and every backbone trained with a head
# (finetuned, scratch), layer by layer, per-dimension AUCs and t-SNE maps, on one sample of test jets.


rule represent:
    input:
        dataset=layout.DATASET,
        pretrained=layout.task_path(layout.BACKBONE, head_task()),
        models=backbone_runs(layout.HEAD_MODEL),
        runs=backbone_runs(layout.HEAD_RUN_JSON),
    output:
        list(layout.REPRESENT_TABLES.values()),
    log:
        "logs/represent/represent.log",
    benchmark:
        "logs/benchmark/represent/represent.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        config=stage_config("represent"),
        runs=backbone_runs(),
        outdir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m hhfm.cli represent --config '{params.config}' --dataset {input.dataset}"
        " --pretrained {input.pretrained} --runs {params.runs} --outdir {params.outdir} > {log} 2>&1"
