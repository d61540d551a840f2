# Helpers of the heads stage (rules in heads.smk): backbone/embedding paths, run parameters and the
# inputs of each head run. Rule-free; included from the Snakefile before the rule files.
# head_runs() is in common.smk.

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


def embed_params():
    """Parameters of `hhfm embed`, as JSON for `--params`."""
    return json.dumps(
        {"embed_batch_size": config["heads"].get("embed_batch_size", 256)}
    )


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


def train_head_threads(wildcards):
    return 1 if head_on_fixed_inputs(wildcards.model) else 2


def train_head_options(wildcards, input):
    return " ".join(
        f"--{name} {input[name]}"
        for name in ("backbone", "embeddings")
        if name in input.keys()
    )
