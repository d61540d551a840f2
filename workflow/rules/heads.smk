# rules of the heads stage (see README "Stage: heads"): cache the frozen backbone's jet outputs
# (`embed`), then train one event head per (model, fraction, seed) (`train_head`).
# head_backbone(), train_head_inputs() etc. are in heads_helpers.smk.


rule embed:
    input:
        dataset="results/skim/dataset.h5",
        backbone=head_backbone(),
    output:
        head_embeddings(),
    log:
        "logs/embed/embed.log",
    benchmark:
        "logs/benchmark/embed/embed.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        json=embed_params(),
    shell:
        "hhfm embed --params '{params.json}' --dataset {input.dataset} --backbone {input.backbone}"
        " --output {output} --threads {threads} > {log} 2>&1"


rule train_head:
    input:
        unpack(train_head_inputs),
    output:
        scores="results/heads/{model}/f{fraction}_s{seed}/scores.parquet",
        metrics="results/heads/{model}/f{fraction}_s{seed}/metrics.csv",
        run="results/heads/{model}/f{fraction}_s{seed}/run.json",
    log:
        "logs/train_head/{model}/f{fraction}_s{seed}.log",
    benchmark:
        "logs/benchmark/train_head/{model}/f{fraction}_s{seed}.tsv"
    threads: train_head_threads
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    params:
        json=head_params(),
        outdir="results/heads/{model}/f{fraction}_s{seed}",
        options=train_head_options,
    shell:
        "hhfm train-head --params '{params.json}' --model {wildcards.model}"
        " --fraction {wildcards.fraction} --seed {wildcards.seed} --dataset {input.dataset}"
        " {params.options} --outdir {params.outdir} --threads {threads} > {log} 2>&1"


rule heads:
    input:
        expand(
            "results/heads/{run}/{name}",
            run=head_runs(),
            name=["scores.parquet", "metrics.csv", "run.json"],
        ),
