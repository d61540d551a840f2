# Helpers shared by the stage files, kept free of rules so that `snakemake --lint` accepts the
# functions. The validated config split into tracked and runtime parts, the job environment, and
# the target lists of every stage. Every path comes from hhfm.layout, the on-disk contract (README "Architecture").

import json
import os
import sys

SRC = os.path.join(workflow.basedir, "src")
sys.path.insert(0, SRC)  # the workflow's own package, before any installed copy

from snakemake.exceptions import WorkflowError

from hhfm import (
    backbones,
    config as hhfm_config,
    layout,
    model_names,
    remote as hhfm_remote,
)
from hhfm.errors import ConfigError
from hhfm.features import JETCLASS_CLASSES, JETCLASS_FILE_PREFIX
from hhfm.simulate import samples as sim_samples

#: the one software environment of every rule (`snakemake --sdm conda`), relative to the rule files
ENV = "../../environment.yml"


def validated_config():
    """The merged config, validated once against src/hhfm/config.schema.yaml, defaults filled."""
    try:
        return hhfm_config.validate(config)
    except ConfigError as err:
        raise WorkflowError(str(err)) from None


#: sections whose stages draw random numbers from the global seed
SEEDED = {"simulate", "skim", "pretrain", "heads", "represent"}


def stage_config(*sections, **replace):
    """Tracked (result-affecting) keys of `sections` (+ the global seed where it is used), as JSON for
    `hhfm <stage> --config`. Changing one reruns the stage (Snakemake's params trigger); `replace`
    overrides keys."""
    tracked = hhfm_config.tracked(config)
    cfg = {s: tracked[s] for s in sections}
    if SEEDED & set(sections):
        cfg["seed"] = config["seed"]
    for section, values in replace.items():
        cfg[section] = {**cfg[section], **values}
    return json.dumps(cfg, sort_keys=True)


def head_task():
    """Pretraining task of the backbone the heads use (heads.backbone_task, else pretrain.task)."""
    return config["heads"]["backbone_task"] or config["pretrain"]["task"]


def model_backbone(model):
    """The backbone (hhfm.backbones) of a head model: `@name`, else head_task(); None for standard."""
    return backbones.of_head_model(model, head_task())


def pretrain_tasks():
    """Every backbone the run needs: pretrain.task and pretrain.report_backbones (jet-level results), every
    head model's backbone, and what each of them starts from (hhfm.backbones.lineage).
    """
    wanted = {config["pretrain"]["task"], *config["pretrain"]["report_backbones"]}
    wanted |= {model_backbone(m) for m in config["heads"]["models"]} - {None}
    return sorted({b for name in wanted for b in backbones.lineage(name)})


def trained_pattern():
    """{task} values of backbones trained here (rule pretrain_backbone)."""
    return "|".join(n for n, b in backbones.BACKBONES.items() if b.published is None)


def published_pattern():
    """{task} values of published backbones (rule import_backbone)."""
    return "|".join(
        n for n, b in backbones.BACKBONES.items() if b.published is not None
    )


def pretrain_inputs(wildcards):
    """Training data (analysis or JetClass dataset), the analysis dataset (jet_scores), the init backbone."""
    b = backbones.get(wildcards.task)
    inputs = {
        "dataset": (
            layout.JETCLASS_DATASET if b.data == backbones.JETCLASS else layout.DATASET
        ),
        "score_dataset": layout.DATASET,
    }
    if b.init is not None:
        inputs["init"] = layout.task_path(layout.BACKBONE, b.init)
    return inputs


def pretrain_options(wildcards, input):
    return f"--init {input.init}" if "init" in input.keys() else ""


def published_weights(wildcards):
    return os.path.join(workflow.basedir, backbones.get(wildcards.task).published)


def jetclass_simulated_files():
    """The simulated JetClass-like files: <prefix>_<index>.root per class, as a JetClass download names them."""
    j = config["jetclass"]
    return [
        layout.JETCLASS_SIMULATION.format(
            jetclass_file=f"{JETCLASS_FILE_PREFIX[c]}_{i}"
        )
        for c in JETCLASS_CLASSES
        for i in range(j["files_per_class"])
    ]


def jetclass_inputs(wildcards):
    """The JetClass-format files the jetclass dataset reads: simulated, or jetclass.files."""
    j = config["jetclass"]
    if j["source"] == "simulation":
        return jetclass_simulated_files()
    if not j["files"]:
        raise WorkflowError(
            "config key 'jetclass.files': empty, but jetclass.source is 'files'"
        )
    return j["files"]


def jetclass_file_class(wildcards):
    """The JetClass class of a simulated file name (<prefix>_<index>)."""
    prefix = wildcards.jetclass_file.rsplit("_", 1)[0]
    classes = {p: c for c, p in JETCLASS_FILE_PREFIX.items()}
    if prefix not in classes:
        raise WorkflowError(
            f"{wildcards.jetclass_file}: not a JetClass file name (<prefix>_<index>, prefix in {sorted(classes)})"
        )
    return classes[prefix]


def jet_score_args():
    """`TASK=PATH` of every pretrained backbone's test-jet scores (summarise, plots)."""
    return " ".join(
        f"{t}={layout.task_path(layout.JET_SCORES, t)}" for t in pretrain_tasks()
    )


def head_runs(pattern=layout.HEAD_RUN):
    """`pattern` filled for every head run (model x fraction x seed of the `heads` section)."""
    h = config["heads"]
    return [
        layout.head_run(m, f, s, pattern)
        for m in h["models"]
        for f in h["fractions"]
        for s in h["seeds"]
    ]


def limit_runs(pattern=layout.LIMITS_TABLE):
    """`pattern` filled for the head runs that get expected limits: those at limits.fractions (null: all)."""
    h, only = config["heads"], config["limits"]["fractions"]
    if only is not None:
        unknown = sorted(set(only) - set(h["fractions"]))
        if unknown:
            raise WorkflowError(
                f"config key 'limits.fractions': {unknown} not in heads.fractions {h['fractions']}"
            )
    return [
        layout.head_run(m, f, s, pattern)
        for m in h["models"]
        for f in h["fractions"]
        for s in h["seeds"]
        if only is None or f in only
    ]


def backbone_runs(pattern=layout.HEAD_RUN):
    """`pattern` filled for every head run whose backbone trains with the head (finetuned, scratch) and
    is head_task()'s (the represent stage compares them with that pretrained backbone).
    """
    return [
        path
        for path, model in zip(head_runs(pattern), head_run_models())
        if runs_backbone_model(model) and model_backbone(model) == head_task()
    ]


def head_run_models():
    """The model of each head run, in head_runs() order."""
    h = config["heads"]
    return [m for m in h["models"] for f in h["fractions"] for s in h["seeds"]]


def heads_config():
    """The `heads` section for `hhfm train-head`, without the keys that only select runs or inputs."""
    run_keys = ("models", "fractions", "seeds", "backbone_task")
    tracked = hhfm_config.tracked(config)["heads"]
    return json.dumps(
        {
            "seed": config["seed"],
            "heads": {k: v for k, v in tracked.items() if k not in run_keys},
        },
        sort_keys=True,
    )


def simulate_config(wildcards):
    """The `simulate` section for one file's job, without the keys that only choose which files exist (sample
    lists, file counts): changing those adds or drops files and never reruns one. `qcd_biased` (power, ref_pt)
    reaches only the biased sample's files."""
    run_keys = ("signal_masses", "qcd_slices", "qcd_sampling", "files_per_sample")
    sim = hhfm_config.tracked(config)["simulate"]
    sim = {k: v for k, v in sim.items() if k not in run_keys}
    biased = sim.pop("qcd_biased")
    if sim_samples.parse_sample(wildcards.sample).biased:
        sim["qcd_biased"] = {k: v for k, v in biased.items() if k != "files"}
    return json.dumps({"seed": config["seed"], "simulate": sim}, sort_keys=True)


def simulated_files():
    """Every simulated ROOT file: signal masses and the QCD samples (slices or the biased one), each with its
    number of files (hhfm.simulate.samples.sample_files)."""
    return [
        layout.SIMULATION_ROOT.format(sample=sample, index=i)
        for sample, n in sim_samples.sample_files(config["simulate"]).items()
        for i in range(n)
    ]


def simulate_runtime(wildcards):
    """Minutes for one file: generous for ~20 events/s on a loaded core, plus start-up."""
    return 5 + int(config["simulate"]["events_per_file"]) // 1000


def _is_xrootd(path):
    return path.startswith(("root://", "roots://"))


def skim_sources():
    """{name: ROOT file path or URL} of every file the skim reads."""
    if config["data"]["source"] == "simulation":
        prefix = layout.SIMULATION_ROOT.split("{")[0]
        return {f[len(prefix) : -len(".root")]: f for f in simulated_files()}
    sources = {}
    for path in config["data"]["opendata_files"]:
        name = f"opendata/{os.path.basename(path).removesuffix('.root')}"
        if name in sources:
            raise WorkflowError(
                f"config key 'data.opendata_files': two files named {name}: {sources[name]} and {path}"
            )
        sources[name] = path
    if not sources:
        raise WorkflowError(
            "config key 'data.opendata_files': empty, but data.source is 'opendata'"
        )
    return sources


def skim_file_input(wildcards):
    """Inputs of one skim job. root:// files are Snakemake storage (snakemake-storage-plugin-xrootd):
    checked to exist before any job runs, streamed by the job (data.stage_remote false) or copied
    locally first (true). Other URLs (http) are read by uproot, untracked."""
    source = skim_sources()[wildcards.name]
    if _is_xrootd(source):
        files = {
            "root": storage.xrootd(source, retrieve=config["data"]["stage_remote"])
        }
    else:
        files = {} if "://" in source else {"root": source}
    if config["data"]["source"] == "simulation":
        files["sidecar"] = f"{source.removesuffix('.root')}.json"
    return files


def skim_file_args(wildcards, input):
    source = skim_sources()[wildcards.name]
    if _is_xrootd(source) and config["data"]["stage_remote"]:
        source = str(input.root)  # Snakemake's local copy
    sidecar = f" --sidecar {input.sidecar}" if "sidecar" in input.keys() else ""
    return f"--input {source}{sidecar}"


def skim_merge_inputs(wildcards):
    return expand(layout.SKIM_FILE, name=sorted(skim_sources()))


def train_head_inputs(wildcards):
    """standard: the dataset; frozen: + cached embeddings; finetuned / scratch: + the backbone."""
    inputs = {"dataset": layout.DATASET}
    backbone = model_backbone(wildcards.model)
    if backbone is not None:
        inputs["backbone"] = layout.task_path(layout.BACKBONE, backbone)
    if strategy(wildcards.model) == "frozen" and backbone is not None:
        inputs["embeddings"] = layout.task_path(layout.EMBEDDINGS, backbone)
    return inputs


def strategy(model):
    """frozen / finetuned / scratch of a head model (`standard`: frozen), by hhfm.model_names."""
    return model_names.parse(model).strategy


def runs_backbone_model(model):
    """Whether the model's backbone trains with the head (finetuned, scratch)."""
    return strategy(model) in ("finetuned", "scratch")


def train_head_threads(wildcards):
    """standard and frozen heads train a small MLP on cached inputs: one thread is fastest."""
    return 1 if strategy(wildcards.model) == "frozen" else 2


def runs_backbone(wildcards):
    """pretrain_backbone, and heads whose backbone trains in the loop (finetuned, scratch)."""
    model = getattr(wildcards, "model", None)
    return model is None or runs_backbone_model(model)


def train_resource(key, single=None):
    """SLURM geometry of a training job from the runtime-only `distributed` section (README "Scale out").

    One rank (nodes x tasks_per_node == 1, or a head on cached inputs): `single` (gpu=1, 8 GB), nothing else
    set, as before. More ranks: sbatch --nodes / --ntasks-per-node / --gres=gpu:<per node> (mpi=srun makes the
    SLURM jobstep leave the launch to hhfm.training.launch, which calls srun), memory per rank. `ranks`
    (NxRxG, always set) tells the launcher.
    """

    def value(wildcards):
        d = config["distributed"]
        n, r, g = d["nodes"], d["tasks_per_node"], d["gpus_per_task"]
        if n * r == 1 or not runs_backbone(wildcards):
            return "1x1x1" if key == "ranks" else single
        return {
            "ranks": f"{n}x{r}x{g}",
            "mpi": "srun",
            "nodes": n,
            "tasks_per_node": r,
            "gres": f"gpu:{r * g}" if g else None,
            "gpu": None,
            "mem_mb": single * r if single else None,
        }.get(key)

    return value


def train_head_options(wildcards, input):
    return " ".join(
        f"--{name} {input[name]}"
        for name in ("backbone", "embeddings")
        if name in input.keys()
    )


def plot_targets():
    """Every figure file (PDF and PNG); `rule all` depends on these."""
    from hhfm.plots import FIGURES, FORMATS

    return [f"{layout.PLOTS_DIR}/{name}.{ext}" for name in FIGURES for ext in FORMATS]
