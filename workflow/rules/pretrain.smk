# rules of the pretrain stage (see README "Stage: pretrain"): one backbone per name of hhfm.backbones
# (results/pretrain/{task}/), for every backbone the run needs (pretrain_tasks() in common.smk).
# `pretrain_backbone` trains one (on the analysis or the JetClass dataset, from random weights or from
# another backbone: the chain); `import_backbone` wraps published weights. Every backbone scores the
# analysis test jets (jet_scores.parquet). The `model` section is part of the params, so editing it
# retrains. checkpoint.pt (not a declared output, so Snakemake keeps it) lets a killed job resume.


rule pretrain_backbone:
    input:
        unpack(pretrain_inputs),
    output:
        backbone=layout.BACKBONE,
        metrics=layout.PRETRAIN_HISTORY,
        scores=layout.JET_SCORES,
    log:
        "logs/pretrain/{task}.log",
    benchmark:
        "logs/benchmark/pretrain/{task}.tsv"
    wildcard_constraints:
        task=trained_pattern(),
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
        options=pretrain_options,
        outdir=lambda wildcards: layout.task_path(layout.PRETRAIN_DIR, wildcards.task),
    shell:
        "python -m hhfm.training.launch --ranks {resources.ranks} --cpus-per-task {threads} --"
        " pretrain --config '{params.config}' --dataset {input.dataset} --score-dataset {input.score_dataset}"
        " {params.options} --outdir {params.outdir} --threads {threads} > {log} 2>&1"


rule import_backbone:
    input:
        weights=published_weights,
        score_dataset=layout.DATASET,
    output:
        backbone=layout.BACKBONE,
        metrics=layout.PRETRAIN_HISTORY,
        scores=layout.JET_SCORES,
    log:
        "logs/pretrain/{task}.log",
    benchmark:
        "logs/benchmark/pretrain/{task}.tsv"
    wildcard_constraints:
        task=published_pattern(),
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    params:
        config=lambda wildcards: stage_config(
            "pretrain", pretrain={"task": wildcards.task}
        ),
        outdir=lambda wildcards: layout.task_path(layout.PRETRAIN_DIR, wildcards.task),
    shell:
        "python -m hhfm.cli pretrain --config '{params.config}' --published {input.weights}"
        " --score-dataset {input.score_dataset} --outdir {params.outdir} --threads {threads} > {log} 2>&1"


rule pretrain:
    input:
        [layout.task_path(layout.BACKBONE, task) for task in pretrain_tasks()],
