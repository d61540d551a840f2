"""The workflow as users run it: lint/format, dry runs (default, paper overlay, slurm profile),
config errors naming the key, rerun behaviour after a completed tiny run, resume of a killed
training job, and the tiny config end to end on a real SLURM (`snakemake --profile slurm`).

The SLURM test needs a running cluster (tests/slurm/cluster.sh, started by .ci/run, which also
sets HHFM_SLURM_TEST=1: then a missing cluster FAILS the test instead of skipping it). Without
SLURM the tiny run that the rerun and resume tests share runs with the local executor.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests/config/tiny.yaml"
PAPER = REPO / "configs/paper.yaml"
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"  # a link to src/hhfm/config.schema.yaml
SLURM_REQUIRED = os.environ.get("HHFM_SLURM_TEST") == "1"

#: rules that run on a GPU (README "Rule names and stage targets")
GPU_RULES = {"pretrain_backbone", "import_backbone", "embed", "train_head"}
#: stage targets: rules without a shell command that only collect a stage's outputs
STAGE_TARGETS = {"simulation", "skim", "pretrain", "heads", "evaluate", "limits", "plots", "all"}
#: rules upstream of the heads (must not rerun when a head option changes)
UPSTREAM_OF_HEADS = {"simulate", "skim_file", "skim", "pretrain_backbone"}


def smk(*args: str, cwd: Path = REPO, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
    """Run snakemake (this interpreter's) as a user would; output captured as text."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def job_counts(output: str) -> collections.Counter:
    """Parse the 'Job stats' table of a (dry) run: rule -> number of jobs."""
    counts: collections.Counter = collections.Counter()
    if "Job stats:" not in output:
        return counts
    table = output.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line)
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def job_blocks(output: str) -> list[tuple[str, str]]:
    """(rule, text of its block) for every job printed by a dry run."""
    parts = re.split(r"^(?:local)?rule (\w+):\s*$", output, flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def defined_rules() -> dict[str, str]:
    """Rule name -> its source block, from the rule files (for declared-resources checks)."""
    blocks = {}
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow/rules").glob("*.smk"))]:
        text = path.read_text()
        parts = re.split(r"^(?:rule|checkpoint) (\w+):\s*$", text, flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2]):
            blocks[name] = body.split("\n\n\n")[0]
    return blocks


def job_rules() -> set[str]:
    """Rules that run a command (not stage targets that only collect files)."""
    return {name for name, body in defined_rules().items() if re.search(r"^\s+(shell|script|run):", body, re.M)}


# ---------------------------------------------------------------- static checks and dry runs


def test_snakefmt_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_rule_has_the_one_software_environment():
    """A `conda:` directive on every rule with a command, all pointing at environment.yml (`--sdm conda`)."""
    rules = defined_rules()
    for name in job_rules():
        assert re.search(r"^\s+conda:\s*\n\s+ENV\b", rules[name], re.M), f"rule {name} has no conda: ENV"
    common = (REPO / "workflow/rules/common.smk").read_text()
    env = re.search(r'^ENV = "(.+)"', common, re.M).group(1)
    assert (REPO / "workflow/rules" / env).resolve() == (REPO / "environment.yml").resolve()


def test_lint_clean():
    proc = smk("--lint")
    text = proc.stdout + proc.stderr
    assert "Lints for" in text or proc.returncode == 0, text
    found = re.findall(r"^Lints for (.+?):\n((?:    .*\n?)+)", text, re.M)
    problems = []
    for where, body in found:
        titles = set(re.findall(r"^    \* (.+?):$", body, re.M))
        problems += [f"{where}: {t}" for t in sorted(titles)]
    assert not problems, "\n".join(problems)


def test_every_rule_declares_resources():
    rules = defined_rules()
    jobs = job_rules()
    assert {"simulate", "skim_file", "train_head"} & jobs, f"no stage rules found: {sorted(rules)}"
    for name in jobs:
        body = rules[name]
        for key in ("threads:", "mem_mb=", "runtime=", "log:", "benchmark:"):
            assert key in body, f"rule {name} does not declare {key.rstrip(':=')}"
        gpu = re.search(r'gpu=(1|train_resource\("gpu", 1\)),', body)  # train_resource: gpu=1 for one rank
        assert bool(gpu) == (name in GPU_RULES), f"rule {name}: gpu=1 only (and always) on GPU rules"


#: rules that only the domain-adaptation overlay's DAG holds (the JetClass-like sample and its dataset)
DOMAIN_ONLY = {"simulate_jetclass", "skim_jetclass"}


def test_dry_run_default_lists_whole_dag():
    proc = smk("-n", "all", check=True)
    counts = job_counts(proc.stdout)
    missing = job_rules() - set(counts)
    assert missing == DOMAIN_ONLY, f"rules not in the DAG of `all`: {sorted(missing)}"
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    h = config["heads"]
    if "train_head" in counts:
        assert counts["train_head"] == len(h["models"]) * len(h["fractions"]) * len(h["seeds"])


@pytest.mark.parametrize("target", sorted(STAGE_TARGETS - {"all"}))
def test_stage_target_dry_runs(target):
    if target not in defined_rules():
        pytest.fail(f"stage target `{target}` is not defined (README: Rule names and stage targets)")
    proc = smk("-n", target, check=True)
    assert job_counts(proc.stdout), proc.stdout[-2000:]


def test_dry_run_domain_overlay():
    """configs/domain.yaml: every rule is in the DAG; each backbone is built once (chains after their init), one
    JetClass file per class and index, and a head run per model x fraction x seed."""
    overlay = yaml.safe_load((REPO / "configs/domain.yaml").read_text())
    counts = job_counts(smk("all", "-n", "--configfile", str(REPO / "configs/domain.yaml"), check=True).stdout)
    assert not job_rules() - set(counts), f"rules not in the DAG: {sorted(job_rules() - set(counts))}"
    assert counts["simulate_jetclass"] == 10 * overlay["jetclass"]["files_per_class"] and counts["skim_jetclass"] == 1
    # xbb, jetclass, jetclass_xbb, particlenet_jetclass_xbb trained; particlenet_jetclass imported
    assert counts["pretrain_backbone"] == 4 and counts["import_backbone"] == 1, dict(counts)
    h = yaml.safe_load((REPO / "config.yaml").read_text())["heads"]
    assert counts["train_head"] == len(overlay["heads"]["models"]) * len(h["fractions"]) * len(h["seeds"])


def test_dry_run_study_overlay():
    """configs/study.yaml (issue 16): biased QCD, >= 5 fractions over >= 2 decades, >= 2 seeds, every
    representation x strategy plus standard and weighted twins; limits only at full data; no ParticleNet jobs."""
    from hhfm.simulate import samples

    study = REPO / "configs/study.yaml"
    overlay = yaml.safe_load(study.read_text())
    counts = job_counts(smk("all", "-n", "--configfile", str(study), check=True).stdout)
    h, sim = overlay["heads"], overlay["simulate"]
    assert sim["qcd_sampling"] == "biased"
    assert len(h["fractions"]) >= 5 and max(h["fractions"]) / min(h["fractions"]) >= 99.9 and len(h["seeds"]) >= 2
    expected = {"standard"} | {f"{r}-{s}" for r in ("score", "embedding", "embedding_only")
                               for s in ("frozen", "finetuned", "scratch")}  # fmt: skip
    assert expected <= set(h["models"]) and any(m.endswith("+weighted") for m in h["models"])
    assert counts["simulate"] == len(sim["signal_masses"]) * sim["files_per_sample"] + sim["qcd_biased"]["files"]
    assert counts["train_head"] == counts["evaluate_run"] == len(h["models"]) * len(h["fractions"]) * len(h["seeds"])
    assert counts["limits_run"] == len(h["models"]) * len(overlay["limits"]["fractions"]) * len(h["seeds"])
    assert counts["pretrain_backbone"] == 1 and "import_backbone" not in counts, dict(counts)
    assert samples.qcd_sample_names({**sim, "qcd_slices": []}) == [f"QCD_Pt_{sim['qcd_biased']['pthat_range']}_biased"]


def test_dry_run_paper_overlay():
    proc = smk("all", "-n", "--configfile", str(PAPER), check=True)
    paper = yaml.safe_load(PAPER.read_text())
    assert len(paper["heads"]["fractions"]) == 17 and len(paper["heads"]["seeds"]) == 4
    assert min(paper["heads"]["fractions"]) == pytest.approx(1e-4) and max(paper["heads"]["fractions"]) == 1
    counts = job_counts(proc.stdout)
    models = yaml.safe_load((REPO / "config.yaml").read_text())["heads"]["models"]
    models = paper["heads"].get("models", models)
    assert counts["train_head"] == len(models) * 17 * 4


def test_dry_run_slurm_profile_literal():
    """`snakemake --profile slurm` from the root of the checkout: GPU rules -> gpu partition + gpu=1."""
    proc = smk("--profile", "slurm", "-n", "all", check=True)
    blocks = job_blocks(proc.stdout)
    assert blocks
    seen = set()
    for rule, text in blocks:
        res = re.search(r"resources: (.*)", text)
        if rule in STAGE_TARGETS and rule not in GPU_RULES or res is None:
            continue
        seen.add(rule)
        assert "slurm_account=" in res.group(1)
        if rule in GPU_RULES:
            assert "slurm_partition=gpu" in res.group(1) and "gpu=1" in res.group(1), (rule, res.group(1))
        else:
            assert "slurm_partition=cpu" in res.group(1) and "gpu=" not in res.group(1), (rule, res.group(1))
    assert seen & GPU_RULES, "no GPU job in the DAG"


def test_dry_run_local_profile():
    """Workstation profile: GPU jobs capped at one at a time (resources gpu: 1)."""
    proc = smk("all", "--profile", "profiles/local", "-n", check=True)
    assert "gpu=1" in proc.stdout
    profile = yaml.safe_load((REPO / "profiles/local/config.yaml").read_text())
    assert profile["resources"]["gpu"] == 1


def test_no_default_workflow_profile():
    assert not (REPO / "profiles/default").exists() and not (REPO / "workflow/profiles/default").exists()


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "overlay, key",
    [
        ({"seed": -3}, "seed"),
        ({"data": {"source": "nonsense"}}, "data.source"),
        ({"heads": {"fractions": "all"}}, "heads.fractions"),
        ({"bogus_key": 1}, "bogus_key"),
    ],
)
def test_invalid_config_names_the_key(tmp_path, overlay, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(overlay))
    proc = smk("-n", "--configfile", str(bad))
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stderr + proc.stdout, proc.stderr[-3000:]


# ---------------------------------------------------------------- a completed tiny run


def slurm_available() -> bool:
    try:
        return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def slurm_jobs(workdir: Path) -> list[dict]:
    """Jobs that slurmctld still knows (MinJobAge=3600) and that ran in `workdir`."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, check=True).stdout
    jobs = []
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if Path(fields.get("WorkDir", "/nonexistent")).resolve() == workdir.resolve():
            jobs.append(fields)
    return jobs


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict:
    """The tiny config run end to end: through `--profile slurm` when a cluster is up, else locally."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    use_slurm = SLURM_REQUIRED or slurm_available()
    common = ["--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    planned = job_counts(smk("all", *common, *configs(), "-n", check=True).stdout)
    if use_slurm:
        run_args = [
            "--profile", str(REPO / "profiles/slurm"), "--jobs", "4",
            "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs",
        ]
    else:
        run_args = ["--cores", "2", "--resources", "gpu=1"]
    t0 = time.perf_counter()
    proc = smk("all", *common, *configs(), *run_args, timeout=2700)  # targets first: --resources takes a list
    return {"workdir": workdir, "common": common, "planned": planned, "proc": proc, "slurm": use_slurm,
            "wall_s": time.perf_counter() - t0}


def configs(*overlays: Path) -> list[str]:
    """`--configfile` with the tiny config and overlays (one flag: a second one would replace it)."""
    return ["--configfile", str(TINY), *map(str, overlays)]


def completed(tiny_run: dict) -> Path:
    proc = tiny_run["proc"]
    assert proc.returncode == 0, f"tiny run failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
    return tiny_run["workdir"]


def test_tiny_run_on_slurm(tiny_run):
    """Every rule ran as a SLURM job; GPU rules in the gpu partition with a GPU; plots exist."""
    if not tiny_run["slurm"]:
        pytest.skip("no SLURM cluster (start one with tests/slurm/cluster.sh; CI sets HHFM_SLURM_TEST=1)")
    workdir = completed(tiny_run)
    jobs = slurm_jobs(workdir)
    ran = collections.Counter()
    for job in jobs:
        assert job["JobState"] == "COMPLETED", job
        rule = re.sub(r"_wildcards_.*$", "", job["Comment"]).removeprefix("rule_")
        ran[rule] += 1
        gpu_request = "gpu:1" in job.get("TresPerJob", "") + job.get("TresPerNode", "")
        if rule in GPU_RULES:
            assert job["Partition"] == "gpu" and gpu_request, job
        else:
            assert job["Partition"] == "cpu" and not gpu_request, job
    expected = {rule: n for rule, n in tiny_run["planned"].items() if rule in job_rules()}
    assert dict(ran) == expected, f"SLURM jobs per rule {dict(ran)} != planned {expected}"
    assert set(expected) >= GPU_RULES
    logs = workdir / ".snakemake/slurm_logs"
    assert {p.name.removeprefix("rule_") for p in logs.iterdir()} == set(expected)
    check_final_outputs(tiny_run)


def test_two_task_ddp_pretraining_on_slurm(tiny_run, tmp_path):
    """distributed.tasks_per_node 2 (CPU ranks): `--profile slurm` submits one job with 2 tasks, the launcher
    starts both ranks with srun, and the backbone's outputs follow the contract."""
    if not tiny_run["slurm"]:
        pytest.skip("no SLURM cluster (start one with tests/slurm/cluster.sh; CI sets HHFM_SLURM_TEST=1)")
    from hhfm.layout import HISTORY_COLUMNS, JET_SCORE_COLUMNS
    from hhfm.models import load_tagger

    workdir = completed(tiny_run)
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy, symlinks=True, ignore=shutil.ignore_patterns("slurm_logs", "locks", "incomplete"))
    overlay = tmp_path / "ddp.yaml"
    overlay.write_text(yaml.safe_dump({"distributed": {"tasks_per_node": 2, "gpus_per_task": 0}}))
    target = "results/pretrain/xbb/backbone.pt"
    before = (copy / target).stat().st_mtime_ns
    smk(target, "--snakefile", str(REPO / "Snakefile"), "--directory", str(copy), *configs(overlay),
        "--forcerun", "pretrain_backbone", "--profile", str(REPO / "profiles/slurm"), "--jobs", "1",
        "--slurm-init-seconds-before-status-checks", "2", check=True, timeout=900)
    jobs = [j for j in slurm_jobs(copy) if j["Comment"].startswith("rule_pretrain_backbone")]
    assert len(jobs) == 1 and jobs[0]["JobState"] == "COMPLETED", jobs
    assert jobs[0]["NumTasks"] == "2", jobs[0]
    log = (copy / "logs/pretrain/xbb.log").read_text()
    assert "launch: srun" in log and "2 rank(s)" in log, log[-3000:]
    out = copy / "results/pretrain/xbb"
    assert (out / "backbone.pt").stat().st_mtime_ns > before
    tagger, meta = load_tagger(out / "backbone.pt")
    assert meta["n_test_jets"] > 0 and tagger.task == "xbb"
    assert list(pd.read_csv(out / "metrics.csv").columns) == HISTORY_COLUMNS
    scores = pd.read_parquet(out / "jet_scores.parquet")
    assert list(scores.columns) == JET_SCORE_COLUMNS and len(scores) == meta["n_test_jets"]
    assert scores["jet"].is_unique and scores["score"].between(0, 1).all()


def check_final_outputs(tiny_run: dict) -> None:
    workdir = tiny_run["workdir"]
    again = smk("all", *tiny_run["common"], *configs(), "-n", check=True)
    assert not job_counts(again.stdout), f"a completed run still has jobs to do:\n{again.stdout[-3000:]}"
    plots = sorted((workdir / "results/plots").glob("*.p*"))
    assert plots and all(p.stat().st_size > 0 for p in plots)


def test_tiny_run_produces_every_plot(tiny_run):
    completed(tiny_run)
    check_final_outputs(tiny_run)


def test_tiny_run_has_representation_and_compute_tables(tiny_run):
    """CKA for every run that trained its backbone, a compute record for every head run (README Stage: represent)."""
    summary = completed(tiny_run) / "results/summary"
    h = yaml.safe_load(TINY.read_text())["heads"]
    trained = [m for m in h["models"] if m.endswith(("-finetuned", "-scratch"))]
    cka = pd.read_csv(summary / "cka.csv")
    assert sorted(set(zip(cka["model"], cka["fraction"]))) == sorted((m, f) for m in trained for f in h["fractions"])
    assert cka["cka"].between(-1e-6, 1 + 1e-6).all()
    compute = pd.read_csv(summary / "compute.csv")
    assert len(compute) == len(h["models"]) * len(h["fractions"]) * len(h["seeds"])
    assert (compute["train_flops"] > 0).all() and (compute["n_ranks"] == 1).all()
    published = compute["model"].str.endswith("@particlenet_jetclass")  # its training cost is not known here
    pretrained = compute["strategy"].isin(["frozen", "finetuned"]) & (compute["model"] != "standard") & ~published
    assert (compute.loc[pretrained, "pretrain_flops"] > 0).all() and compute.loc[~pretrained, "pretrain_flops"].isna().all()
    assert (compute["flops_full"] >= compute["flops_amortised"]).all()


def test_tiny_run_has_every_pretraining_source(tiny_run):
    """The jetclass -> xbb chain and the published ParticleNet ran: zero-shot and chained taggers in the jet metrics,
    head runs on them name their backbone (README Stage: jetclass)."""
    workdir = completed(tiny_run)
    taggers = set(pd.read_csv(workdir / "results/summary/jet_metrics.csv")["tagger"])
    assert {"ParT xbb", "ParT jetclass (zero-shot)", "ParT jetclass_xbb", "ParticleNet particlenet_jetclass (zero-shot)",
            "fj_doubleb"} == taggers
    for model in (m for m in yaml.safe_load(TINY.read_text())["heads"]["models"] if "@" in m):
        run = json.loads((workdir / f"results/heads/{model}/f1_s0/run.json").read_text())
        assert run["backbone_task"] == model.partition("@")[2], run
    assert (workdir / "results/jetclass/dataset.h5").exists() and (workdir / "results/plots/domain_adaptation.png").exists()


def test_report_has_every_figure_with_its_caption(tiny_run):
    """`snakemake --report` after a run: a self-contained HTML with every figure and its caption."""
    workdir = completed(tiny_run)
    report = workdir / "report.html"
    smk("all", *tiny_run["common"], *configs(), "--report", str(report), check=True)
    html = report.read_text(errors="replace")
    captions = sorted((REPO / "workflow/report").glob("*.rst"))
    assert captions
    for caption in captions:
        if caption.stem == "workflow":
            continue
        assert f"{caption.stem}.png" in html, f"{caption.stem} missing from the report"
        first_words = " ".join(caption.read_text().split()[:4])
        assert first_words in html or first_words.replace("`", "") in html, f"caption of {caption.stem} missing"


# ---------------------------------------------------------------- rerun behaviour


def changed_option(section: str, skip: tuple[str, ...] = ()) -> tuple[str, object]:
    """A documented option of `section` and a valid value different from its current one."""
    schema = yaml.safe_load(SCHEMA.read_text())["properties"][section]
    current = {**yaml.safe_load((REPO / "config.yaml").read_text()).get(section, {}),
               **(yaml.safe_load(TINY.read_text()).get(section) or {})}
    for key, prop in schema.get("properties", {}).items():
        if key in skip or prop.get("x-runtime"):  # runtime-only keys rerun nothing (test below)
            continue
        value = current.get(key, prop.get("default"))
        if "enum" in prop and len(prop["enum"]) > 1:
            return key, next(v for v in prop["enum"] if v != value)
        if prop.get("type") == "boolean" and value is not None:
            return key, not value
        if prop.get("type") in ("number", "integer") and value is not None:
            new = value + 1 if prop.get("type") == "integer" else value * 1.5
            if new <= prop.get("maximum", float("inf")):
                return key, new
    pytest.fail(f"no option to change in config section {section!r} of the schema")


def rerun_plan(tiny_run: dict, tmp_path: Path, overlay: dict) -> collections.Counter:
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(overlay))
    proc = smk("all", *tiny_run["common"], *configs(path), "-n", check=True)
    return job_counts(proc.stdout)


def test_plot_option_reruns_only_plots(tiny_run, tmp_path):
    completed(tiny_run)
    key, value = changed_option("plots")
    plan = rerun_plan(tiny_run, tmp_path, {"plots": {key: value}})
    assert set(plan) - {"all"} == {"plots"}, f"changing plots.{key} reruns {dict(plan)}"


def test_represent_option_reruns_represent_and_plots(tiny_run, tmp_path):
    completed(tiny_run)
    key, value = changed_option("represent")
    plan = rerun_plan(tiny_run, tmp_path, {"represent": {key: value}})
    assert set(plan) - {"all"} == {"represent", "plots"}, f"changing represent.{key} reruns {dict(plan)}"


def test_head_option_reruns_heads_and_below(tiny_run, tmp_path):
    completed(tiny_run)
    key, value = changed_option("heads", skip=("models", "fractions", "seeds", "backbone_task"))
    plan = rerun_plan(tiny_run, tmp_path, {"heads": {key: value}})
    assert "train_head" in plan, f"changing heads.{key} reruns {dict(plan)}"
    assert not set(plan) & UPSTREAM_OF_HEADS, f"changing heads.{key} reruns {dict(plan)}"
    assert "plots" in plan


def test_pretrain_option_retrains_backbone_and_downstream(tiny_run, tmp_path):
    completed(tiny_run)
    key, value = changed_option("pretrain", skip=("task", "compile"))
    plan = rerun_plan(tiny_run, tmp_path, {"pretrain": {key: value}})
    assert {"pretrain_backbone", "embed", "train_head", "plots"} <= set(plan), \
        f"changing pretrain.{key} reruns {dict(plan)}"
    assert not set(plan) & {"simulate", "skim_file", "skim"}, f"changing pretrain.{key} reruns {dict(plan)}"


def runtime_keys() -> list[tuple[str, str]]:
    """(section, key) of every option the schema marks `x-runtime` (cannot change a result)."""
    props = yaml.safe_load(SCHEMA.read_text())["properties"]
    return [(sec, key) for sec, sub in props.items() for key, prop in sub.get("properties", {}).items()
            if prop.get("x-runtime") or sub.get("x-runtime")]  # a runtime section: all its keys


def test_runtime_options_rerun_nothing(tiny_run, tmp_path):
    """skim.chunk_size, heads.embed_batch_size and every other x-runtime key: nothing to do after a change."""
    completed(tiny_run)
    keys = runtime_keys()
    assert {("skim", "chunk_size"), ("heads", "embed_batch_size")} <= set(keys)
    overlay = {"skim": {"chunk_size": 7, "reader": "coffea", "file_compression": "gzip",
                        "remote": {"retries": 0, "backoff_s": 0.5, "connect_timeout_s": 3.0}},
               "heads": {"embed_batch_size": 3, "device": "cpu", "loader_workers": 2},
               "pretrain": {"device": "cpu", "loader_workers": 2},
               "distributed": {"nodes": 2, "tasks_per_node": 4, "gpus_per_task": 2}}
    assert {(sec, key) for sec, sub in overlay.items() for key in sub} == set(keys), "overlay misses a runtime key"
    plan = rerun_plan(tiny_run, tmp_path, overlay)
    assert not plan, f"runtime-only options rerun {dict(plan)}"


def test_skim_option_reruns_skim_and_everything_below(tiny_run, tmp_path):
    completed(tiny_run)
    plan = rerun_plan(tiny_run, tmp_path, {"skim": {"pt_min": 310.0}})
    assert "simulate" not in plan
    assert {"skim_file", "skim", "pretrain_backbone", "embed", "train_head", "evaluate_run", "limits_run",
            "summarise", "limits", "plots"} <= set(plan), dict(plan)


def test_heads_on_another_pretraining_task(tiny_run, tmp_path):
    """pretrain.task xbb with heads.backbone_task multiclass: both backbones are built and the heads use the
    multiclass one (run.json says so); the xbb backbone still feeds the jet-level results."""
    workdir = completed(tiny_run)
    overlay = tmp_path / "multiclass.yaml"
    overlay.write_text(yaml.safe_dump({"pretrain": {"task": "xbb"},
                                       "heads": {"backbone_task": "multiclass", "models": ["score-frozen"],
                                                 "fractions": [1.0]}}))
    fresh = smk("all", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path / "empty"),
                *configs(overlay), "-n", check=True)
    assert job_counts(fresh.stdout)["pretrain_backbone"] == 2
    copy = tmp_path / "run"
    shutil.copytree(workdir, copy, symlinks=True, ignore=shutil.ignore_patterns("slurm_logs", "locks", "incomplete"))
    args = ["--snakefile", str(REPO / "Snakefile"), "--directory", str(copy), *configs(overlay)]
    plan = job_counts(smk("all", *args, "-n", check=True).stdout)
    assert plan["pretrain_backbone"] == 1 and plan["embed"] == 1, dict(plan)  # only the multiclass backbone is new
    smk("heads", *args, "--cores", "2", "--resources", "gpu=1", check=True)
    for task in ("xbb", "multiclass"):
        assert (copy / f"results/pretrain/{task}/backbone.pt").exists()
    run = json.loads((copy / "results/heads/score-frozen/f1_s0/run.json").read_text())
    assert run["backbone_task"] == "multiclass" and run["backbone"].endswith("results/pretrain/multiclass/backbone.pt")


# ---------------------------------------------------------------- kill and resume


def test_killed_training_resumes_from_checkpoint(tiny_run, tmp_path):
    """SIGKILL a head training mid-run; `--rerun-incomplete` resumes from its checkpoint and ends
    with the same result as an uninterrupted run of the same configuration."""
    workdir = completed(tiny_run)
    # enough epochs (no early stopping) to catch the run in the middle
    overlay = tmp_path / "long.yaml"
    overlay.write_text(yaml.safe_dump({"heads": {"max_epochs": 6, "patience": 0, "min_events_per_epoch": 2048}}))
    run_dir = workdir / "results/heads/standard/f1_s0"
    target = str((run_dir / "scores.parquet").relative_to(workdir))
    args = [*tiny_run["common"], *configs(overlay), "--cores", "2", "--resources", "gpu=1"]

    shutil.rmtree(run_dir)
    smk(target, *args, check=True)  # uninterrupted reference
    reference = {name: (run_dir / name).read_bytes() for name in ("scores.parquet", "metrics.csv", "run.json")}
    ref_scores = pd.read_parquet(run_dir / "scores.parquet")
    ref_metrics = pd.read_csv(run_dir / "metrics.csv")
    assert reference

    shutil.rmtree(run_dir)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", target, *args], cwd=workdir,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            metrics = run_dir / "metrics.csv"
            if (run_dir / "checkpoint.pt").exists() and metrics.exists() and len(pd.read_csv(metrics)) >= 2:
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the whole group we started: snakemake and hhfm
        proc.wait()
    killed_at = len(pd.read_csv(run_dir / "metrics.csv"))
    assert not (run_dir / "scores.parquet").exists(), "training finished before it could be killed"
    assert killed_at < len(ref_metrics)

    smk(*tiny_run["common"], "--unlock", check=True)
    resumed = smk(target, "--rerun-incomplete", *args, check=True)
    log = (workdir / "logs/train_head/standard/f1_s0.log")
    log_text = log.read_text() if log.exists() else resumed.stderr
    assert re.search(r"resuming .*checkpoint\.pt after epoch [1-9]", log_text), log_text[-3000:]

    scores = pd.read_parquet(run_dir / "scores.parquet")
    metrics = pd.read_csv(run_dir / "metrics.csv")
    pd.testing.assert_frame_equal(scores, ref_scores)
    cols = [c for c in ref_metrics.columns if c != "time_s"]
    pd.testing.assert_frame_equal(metrics[cols], ref_metrics[cols])
    run = json.loads((run_dir / "run.json").read_text())
    ref_run = json.loads(reference["run.json"])
    for key in ("epochs_run", "best_epoch", "n_train_events", "n_test_events"):
        assert run[key] == ref_run[key], key
    assert np.isfinite(scores["score"]).all()
