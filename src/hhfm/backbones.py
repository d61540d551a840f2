"""Every jet backbone the pipeline can build, by name: what it learns, from which data, starting where.

A backbone name is the `{task}` of results/pretrain/{task}/ (backbone.pt, metrics.csv, jet_scores.parquet),
the value of heads.backbone_task and the `@name` suffix of a head model (`embedding-finetuned@jetclass`).

    name                       objective  trained on              starts from
    xbb                        xbb        analysis jets (skim)    random
    multiclass, multilabel     (same)     analysis jets           random
    jetclass                   jetclass   JetClass-format jets    random (10 JetClass classes)
    jetclass_xbb               xbb        analysis jets           jetclass (the reference's chain)
    particlenet_jetclass       jetclass   -- (published weights, pretrained/ParticleNet_JetClass_full.pt)
    particlenet_jetclass_xbb   xbb        analysis jets           particlenet_jetclass

jet_scores.parquet always holds the analysis dataset's labelled test jets, so a JetClass-trained backbone's
row there is its zero-shot H->bb score p(Hbb) / (p(Hbb) + p(QCD)).
"""

from __future__ import annotations

from dataclasses import dataclass

from hhfm.errors import ConfigError

#: what a backbone's training data is: the analysis' own dataset (skim) or the JetClass-format dataset
ANALYSIS, JETCLASS = "analysis", "jetclass"
#: the published JetClass ParticleNet weights, relative to the repository root (pretrained/README.md)
PUBLISHED_PARTICLENET = "pretrained/ParticleNet_JetClass_full.pt"


@dataclass(frozen=True)
class Backbone:
    """One backbone: its training objective, data (None = published, not trained here), initialisation."""

    name: str
    objective: str  # xbb | multiclass | multilabel | jetclass
    data: str | None  # ANALYSIS | JETCLASS | None
    init: str | None = None  # backbone whose weights the training starts from
    published: str | None = None  # weights file of a published backbone


BACKBONES: dict[str, Backbone] = {b.name: b for b in (
    Backbone("xbb", "xbb", ANALYSIS),
    Backbone("multiclass", "multiclass", ANALYSIS),
    Backbone("multilabel", "multilabel", ANALYSIS),
    Backbone("jetclass", "jetclass", JETCLASS),
    Backbone("jetclass_xbb", "xbb", ANALYSIS, init="jetclass"),
    Backbone("particlenet_jetclass", "jetclass", None, published=PUBLISHED_PARTICLENET),
    Backbone("particlenet_jetclass_xbb", "xbb", ANALYSIS, init="particlenet_jetclass"),
)}  # fmt: skip
#: the objectives a training run can have (hhfm.pretrain.task)
OBJECTIVES = ("xbb", "multiclass", "multilabel", "jetclass")


def get(name: str) -> Backbone:
    """The backbone called `name`; ConfigError listing the known names otherwise."""
    if name not in BACKBONES:
        raise ConfigError(f"unknown backbone {name!r}; expected one of {sorted(BACKBONES)}")
    return BACKBONES[name]


def lineage(name: str) -> list[str]:
    """`name` and every backbone it starts from, nearest first (what must exist before it trains)."""
    out = [name]
    while (init := get(out[-1]).init) is not None:
        out.append(init)
    return out


def of_head_model(model: str, default: str | None) -> str | None:
    """The backbone a head model uses: its `@backbone` suffix (`embedding-finetuned@jetclass`), else `default`
    (heads.backbone_task or pretrain.task); None for `standard`, which uses none. A `+weighted` suffix changes
    nothing here (the name's grammar: hhfm.model_names)."""
    from hhfm.model_names import STANDARD, parse

    parsed = parse(model)
    if parsed.representation == STANDARD:
        return None
    return parsed.backbone or default


def tagger_label(name: str) -> str:
    """How tables and figures name a backbone's jet tagger: architecture, backbone name, and `zero-shot` for
    a JetClass tagger scored on the analysis' jets without training on them."""
    b = get(name)
    arch = "ParticleNet" if name.startswith("particlenet") else "ParT"
    return f"{arch} {name}" + (" (zero-shot)" if b.objective == "jetclass" else "")


def wildcard_pattern() -> str:
    """Regular expression of every backbone name (Snakemake's {task} wildcard constraint)."""
    return "|".join(sorted(BACKBONES, key=len, reverse=True))
