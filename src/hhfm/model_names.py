"""Head model names (the `{model}` of results/heads/{model}/...): one grammar, one parser.

    standard[+weighted]
    {representation}-{strategy}[@backbone][+weighted]

representation: `score`, `embedding`, `embedding_only`; strategy: `frozen`, `finetuned`, `scratch`; backbone: a
name of hhfm.backbones (without it, the run uses heads.backbone_task); `+weighted`: the head trains with physical
event weights (hhfm.heads.data.training_weights) instead of unweighted events with pos_weight, so it runs side by
side with its unweighted twin (the same name without the suffix). Examples: `embedding-finetuned+weighted`,
`embedding-frozen@particlenet_jetclass+weighted`, `standard+weighted`.

Every consumer uses this module: hhfm.heads.model.parse_model, hhfm.backbones.of_head_model, the Snakefile's
`{model}` wildcard constraint (`pattern()`), the rule helpers (workflow/rules/common.smk), the plots and the
tables' `weighted` column (hhfm.layout). The `heads.models` pattern of src/hhfm/config.schema.yaml is
`^` + pattern() + `$` written out (tested). Free of torch, so the Snakefile can import it.
"""

from __future__ import annotations

from typing import NamedTuple

from hhfm import backbones
from hhfm.errors import ConfigError

REPRESENTATIONS = ("score", "embedding", "embedding_only")
STRATEGIES = ("frozen", "finetuned", "scratch")
STANDARD = "standard"
#: suffix of a model trained with physical event weights
WEIGHTED = "+weighted"


class ModelName(NamedTuple):
    """A parsed head model name."""

    representation: str  # standard | score | embedding | embedding_only
    strategy: str  # frozen | finetuned | scratch (standard: frozen)
    backbone: str | None  # the `@backbone` suffix, None without one (heads.backbone_task; standard: none at all)
    weighted: bool  # `+weighted`: trained with physical event weights


def split_weighted(name: str) -> tuple[str, bool]:
    """(`name` without its `+weighted` suffix, whether it had one) for any string: a model's unweighted twin."""
    return (name[: -len(WEIGHTED)], True) if name.endswith(WEIGHTED) else (name, False)


def parse(name: str) -> ModelName:
    """Parse a head model name (grammar in the module docstring); ConfigError naming the model otherwise."""
    base, weighted = split_weighted(name)
    if base == STANDARD:
        return ModelName(STANDARD, "frozen", None, weighted)
    head, at, backbone = base.partition("@")
    rep, _, strategy = head.rpartition("-")
    if rep not in REPRESENTATIONS or strategy not in STRATEGIES:
        raise ConfigError(
            f"model {name!r}: expected 'standard' or '{{representation}}-{{strategy}}[@backbone]', either followed "
            f"by an optional {WEIGHTED!r}, with representation in {list(REPRESENTATIONS)} and strategy in "
            f"{list(STRATEGIES)}")
    return ModelName(rep, strategy, backbones.get(backbone).name if at else None, weighted)


def pattern() -> str:
    """Regular expression (no anchors) of exactly the valid names: the Snakefile's `{model}` constraint."""
    reps = "|".join(sorted(REPRESENTATIONS, key=len, reverse=True))
    return (rf"({STANDARD}|({reps})-({'|'.join(STRATEGIES)})(@({backbones.wildcard_pattern()}))?)"
            rf"([+]{WEIGHTED[1:]})?")
