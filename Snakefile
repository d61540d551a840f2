# hhfm: X -> HH -> bbbb with a fine-tuned jet foundation model. Entry point of the workflow.
# Stages (one rule file each): simulate -> skim -> pretrain -> embed -> heads -> evaluate
# -> summarise -> limits -> plots. See README.md ("Architecture", "Running the workflow").
#
#   snakemake -c2                                  # everything (rule `all`: every plot)
#   snakemake -c2 heads                            # one stage and what it needs
#   snakemake --configfile configs/paper.yaml ...  # overlays change the scale
#   snakemake --profile slurm                      # on a SLURM cluster (profiles/slurm)

from snakemake.utils import min_version

min_version("9.19")


# config.yaml next to this Snakefile, so `--directory <elsewhere>` still finds it;
# `--configfile` overlays are merged on top of it.
configfile: os.path.join(workflow.basedir, "config.yaml")


# root:// inputs (data.source opendata) are Snakemake storage: their existence is checked before any
# job runs. The plugin's default of one request per second would take minutes on the record's 91 files.
storage:
    provider="xrootd",
    max_requests_per_second=20,


include: "workflow/rules/common.smk"


# One validation of the merged config against src/hhfm/config.schema.yaml (the one definition of every
# key and default); errors name every offending key. Every job runs this checkout's package (PYTHONPATH)
# and gets the runtime-only keys in HHFM_RUNTIME, outside the tracked params (hhfm.config).
config.update(validated_config())
hhfm_config.export_job_environment(SRC, config)
# one XRootD connection attempt per try, here too (the storage plugin's existence checks): the client's
# default waits ~8 minutes for a server that is down
hhfm_remote.configure_client(hhfm_remote.RetryPolicy(**config["skim"]["remote"]))


wildcard_constraints:
    sample=r"[A-Za-z0-9_]+",
    index=r"\d+",
    model=model_names.pattern(),
    fraction=r"[0-9.]+(e-?\d+)?",
    seed=r"\d+",
    task=backbones.wildcard_pattern(),
    jetclass_file=r"[A-Za-z0-9]+_\d+",


include: "workflow/rules/simulate.smk"
include: "workflow/rules/skim.smk"
include: "workflow/rules/jetclass.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/heads.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/limits.smk"
include: "workflow/rules/represent.smk"
include: "workflow/rules/plots.smk"


rule all:
    default_target: True
    input:
        plot_targets(),
        layout.CLAIMS_TABLE,
        layout.CLAIMS_WEIGHTED_TABLE,
