# rules of the heads stage (see README "Stage: heads"): cache the frozen backbone's jet outputs
# (`embed`), then train one event head per (model, fraction, seed) (`train_head`).

#: keys of the `heads` section that select runs; they are not passed to a run, so adding a model,
#: fraction or seed never reruns existing runs
HEAD_RUN_LIST_KEYS = ("models", "fractions", "seeds")


def head_task():
    """Pretraining task of the backbone the heads use (heads.backbone_task, else pretrain.task)."""
    return config["heads"].get("backbone_task") or config["pretrain"]["task"]


def head_backbone():
    return f"results/pretrain/{head_task()}/backbone.pt"


def head_embeddings():
    return f"results/embed/{head_task()}/embeddings.h5"


def head_params():
    """`heads` section without the run lists, plus the global seed, as JSON for `--params`."""
    section = {k: v for k, v in config["heads"].items() if k not in HEAD_RUN_LIST_KEYS}
    return json.dumps({"seed": config["seed"], **section}, sort_keys=True)


def train_head_inputs(wildcards):
    """standard: the dataset; frozen: + cached embeddings; finetuned / scratch: + the backbone."""
    inputs = {"dataset": "results/skim/dataset.h5"}
    if wildcards.model != "standard":
        inputs["backbone"] = head_backbone()
    if wildcards.model.endswith("-frozen"):
        inputs["embeddings"] = head_embeddings()
    return inputs


def head_on_fixed_inputs(model):
    """standard and frozen heads train a small MLP on cached inputs: one thread is fastest."""
    return model == "standard" or model.endswith("-frozen")


def train_head_options(wildcards, input):
    return " ".join(
        f"--{name} {input[name]}"
        for name in ("backbone", "embeddings")
        if name in input.keys()
    )


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
    params:
        json=json.dumps(
            {"embed_batch_size": config["heads"].get("embed_batch_size", 256)}
        ),
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
    threads: lambda wildcards: 1 if head_on_fixed_inputs(wildcards.model) else 2
    resources:
        gpu=1,
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
