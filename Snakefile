# hhfm: X -> HH -> bbbb with a fine-tuned jet foundation model. Entry point of the workflow.
# Stages (one rule file each): simulate -> skim -> pretrain -> embed -> heads -> evaluate
# -> summarise -> limits -> plots. See README.md for the architecture table.

from snakemake.utils import min_version, validate

min_version("9.19")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/skim.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/heads.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/limits.smk"
include: "workflow/rules/plots.smk"


rule all:
    input:
        all_targets(),
    default_target: True
