# Helpers of the pretrain stage (rules in pretrain.smk). Rule-free; included from the Snakefile
# before the rule files.


def pretrain_dir():
    return f"results/pretrain/{config['pretrain']['task']}"


def pretrain_params():
    """`pretrain` section + global seed + the `model` section, as JSON for `--params`."""
    return json.dumps(
        {**json.loads(stage_params("pretrain")), "model": config["model"]},
        sort_keys=True,
    )
