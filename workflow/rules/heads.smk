# rules of the heads stage (see README "Stage: heads"): cache a frozen backbone's jet outputs
# (`embed`), then train one event head per (model, fraction, seed) (`train_head`). The heads use the
# backbone of heads.backbone_task (default: pretrain.task). train_head_inputs() etc. are in common.smk.


rule embed:
    input:
        dataset=layout.DATASET,
        backbone=layout.BACKBONE,
    output:
        layout.EMBEDDINGS,
    log:
        "logs/embed/{task}.log",
    benchmark:
        "logs/benchmark/embed/{task}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    shell:
        "python -m hhfm.cli embed --dataset {input.dataset} --backbone {input.backbone}"
        " --output {output} --threads {threads} > {log} 2>&1"


rule train_head:
    input:
        unpack(train_head_inputs),
    output:
        scores=layout.HEAD_SCORES,
        val_scores=layout.HEAD_VAL_SCORES,
        metrics=layout.HEAD_HISTORY,
        run=layout.HEAD_RUN_JSON,
        model=layout.HEAD_MODEL,
    log:
        "logs/train_head/{model}/f{fraction}_s{seed}.log",
    benchmark:
        "logs/benchmark/train_head/{model}/f{fraction}_s{seed}.tsv"
    conda:
        ENV
    threads: train_head_threads
    resources:
        gpu=train_resource("gpu", 1),
        mem_mb=train_resource("mem_mb", 8000),
        runtime=240,
        # DDP ranks when the backbone trains in the loop (config `distributed`): see common.smk
        ranks=train_resource("ranks"),
        mpi=train_resource("mpi"),
        nodes=train_resource("nodes"),
        tasks_per_node=train_resource("tasks_per_node"),
        gres=train_resource("gres"),
    params:
        config=heads_config(),
        outdir=lambda wildcards: layout.head_run(**wildcards),
        options=train_head_options,
    shell:
        "python -m hhfm.training.launch --ranks {resources.ranks} --cpus-per-task {threads} --"
        " train-head --config '{params.config}' --model {wildcards.model}"
        " --fraction {wildcards.fraction} --seed {wildcards.seed} --dataset {input.dataset}"
        " {params.options} --outdir {params.outdir} --threads {threads} > {log} 2>&1"


rule heads:
    input:
        [path for pattern in layout.HEAD_FILES for path in head_runs(pattern)],
