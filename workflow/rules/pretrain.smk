# rules of the pretrain stage (see README "Stage: pretrain"): one backbone per pretraining task
# (`pretrain_backbone`, results/pretrain/{task}/), for every task the run needs (pretrain.task and
# heads.backbone_task); the `model` section is part of its params, so editing either retrains.
# checkpoint.pt (not a declared output, so Snakemake keeps it) lets a killed job resume.


rule pretrain_backbone:
    input:
        dataset=layout.DATASET,
    output:
        backbone=layout.BACKBONE,
        metrics=layout.PRETRAIN_HISTORY,
        scores=layout.JET_SCORES,
    log:
        "logs/pretrain/{task}.log",
    benchmark:
        "logs/benchmark/pretrain/{task}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        gpu=train_resource("gpu", 1),
        mem_mb=train_resource("mem_mb", 8000),
        runtime=720,
        # DDP ranks (config `distributed`, runtime-only): see train_resource in common.smk
        ranks=train_resource("ranks"),
        mpi=train_resource("mpi"),
        nodes=train_resource("nodes"),
        tasks_per_node=train_resource("tasks_per_node"),
        gres=train_resource("gres"),
    params:
        config=lambda wildcards: stage_config(
            "pretrain", "model", pretrain={"task": wildcards.task}
        ),
        outdir=lambda wildcards: layout.task_path(layout.PRETRAIN_DIR, wildcards.task),
    shell:
        "python -m hhfm.training.launch --ranks {resources.ranks} --cpus-per-task {threads} --"
        " pretrain --config '{params.config}' --dataset {input.dataset} "
        "--outdir {params.outdir} --threads {threads} > {log} 2>&1"


rule pretrain:
    input:
        [layout.task_path(layout.BACKBONE, task) for task in pretrain_tasks()],
