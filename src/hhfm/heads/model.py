"""The event classifier: a DeepSets head over the jets of an event, optionally on top of a ParT backbone.

One head architecture per representation, whatever the strategy (the reference mixed head shapes
between frozen and fine-tuned runs, which confounds the comparison):

    per jet   r_j  = representation (score: 1, embedding / embedding_only: D)   (B, J, R)
              h_j  = [r_j, standardised HLF_j]  (HLF omitted for embedding_only)  (B, J, I)
    phi       z_j  = MLP(h_j)                                                     (B, J, W)
    pool      z    = sum_j mask_j z_j   (or the mean over real jets)              (B, W)
    rho       y    = Linear(MLP(z)) -> one logit                                  (B,)

The jet representation comes either from a cache (frozen strategy: `rep` in the batch) or from a
backbone run inside the model on the constituents of the real jets only (finetuned / scratch, and
frozen without a cache, used by the speed benchmark).
"""

from __future__ import annotations

import torch
from torch import nn

from hhfm import model_names
from hhfm.features import HLF_NAMES
from hhfm.model_names import STANDARD


def parse_model(name: str) -> tuple[str, str]:
    """`standard[+weighted]` -> (standard, frozen); `{representation}-{strategy}[@backbone][+weighted]` ->
    (representation, strategy). The whole name, backbone and weighting included: hhfm.model_names.parse."""
    parsed = model_names.parse(name)
    return parsed.representation, parsed.strategy


def representation_dim(representation: str, embed_dim: int) -> int:
    """Width R of the per-jet representation fed to the head (before the HLF)."""
    return 1 if representation in (STANDARD, "score") else embed_dim


def uses_hlf(representation: str) -> bool:
    return representation != "embedding_only"


def mlp(in_dim: int, width: int, n_layers: int) -> nn.Sequential:
    """n_layers x (Linear -> ReLU) of constant width."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(in_dim if i == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers)


class DeepSetsHead(nn.Module):
    """phi per jet -> masked sum/mean over jets -> rho -> one logit; invariant to jet order and padding."""

    def __init__(self, in_dim: int, phi_width: int = 64, phi_layers: int = 3, rho_width: int = 64,
                 rho_layers: int = 3, pool: str = "sum") -> None:
        super().__init__()
        if pool not in ("sum", "mean"):
            raise ValueError(f"pool must be 'sum' or 'mean', got {pool!r}")
        self.pool = pool
        self.phi = mlp(in_dim, phi_width, phi_layers)
        self.rho = mlp(phi_width, rho_width, rho_layers)
        self.out = nn.Linear(rho_width if rho_layers else phi_width, 1)

    def forward(self, jets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """jets (B, J, I), mask (B, J) bool -> logits (B,)."""
        m = mask.unsqueeze(-1).to(jets.dtype)  # (B, J, 1)
        z = (self.phi(torch.where(m.bool(), jets, 0.0)) * m).sum(1)  # (B, W); padding never reaches phi's output
        if self.pool == "mean":
            z = z / m.sum(1).clamp(min=1.0)
        return self.out(self.rho(z)).squeeze(-1)


def jet_outputs(tagger: nn.Module, x: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a JetTagger on jets: x (N, P, F), v (N, P, 4), mask (N, P) -> embedding (N, D), Xbb score (N,) in [0, 1]."""
    emb = tagger.backbone(x, v, mask)  # (N, D); the backbone trims padding particles itself
    score = tagger.xbb_score(tagger.head(emb))  # (N,)
    return emb, score


class EventClassifier(nn.Module):
    """DeepSets head plus (optionally) the jet tagger that produces its per-jet representation.

    `tagger=None`: the representation comes precomputed in the batch (`rep`, (B, J, R)).
    `freeze_backbone=True`: the tagger is kept in eval mode, without gradients, and its weights never change.
    """

    def __init__(self, representation: str, head: DeepSetsHead, tagger: nn.Module | None = None,
                 freeze_backbone: bool = False) -> None:
        super().__init__()
        self.representation = representation
        self.head = head
        self.tagger = tagger
        self.freeze_backbone = freeze_backbone
        if tagger is not None and freeze_backbone:
            tagger.requires_grad_(False)

    def train(self, mode: bool = True) -> "EventClassifier":
        super().train(mode)
        if self.tagger is not None and self.freeze_backbone:
            self.tagger.eval()  # no dropout in a frozen backbone: same outputs as the cache
        return self

    def jet_representation(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-jet representation (B, J, R): from the cache, or from the tagger on the real jets only."""
        if self.tagger is None:
            return batch["rep"]
        jmask = batch["jmask"]  # (B, J)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=batch["x"].is_cuda):
                emb, score = jet_outputs(self.tagger, batch["x"], batch["v"], batch["pmask"])  # (N, D), (N,)
        flat = score.unsqueeze(-1) if self.representation == "score" else emb  # (N, R), N = jmask.sum()
        rep = flat.new_zeros(*jmask.shape, flat.shape[-1]).float()  # (B, J, R)
        rep[jmask] = flat.float()
        return rep

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """batch: jmask (B, J) bool, hlf (B, J, 5) and rep (B, J, R) or x/v/pmask of the real jets -> logits (B,)."""
        rep = self.jet_representation(batch)
        jets = torch.cat([rep, batch["hlf"]], dim=-1) if uses_hlf(self.representation) else rep
        return self.head(jets, batch["jmask"])


def build_head(representation: str, embed_dim: int, params: dict) -> DeepSetsHead:
    """The head for a representation, sized from the `heads` config section."""
    in_dim = representation_dim(representation, embed_dim) + (len(HLF_NAMES) if uses_hlf(representation) else 0)
    return DeepSetsHead(in_dim, params["phi_width"], params["phi_layers"], params["rho_width"], params["rho_layers"],
                        params["pool"])


#: format tag of a head run's model.pt (hhfm.layout.HEAD_MODEL)
HEAD_FORMAT = "hhfm-head-v1"


def save_event_model(path, model: EventClassifier, name: str) -> None:
    """model.pt of a head run (atomically): the best weights of the whole classifier and, when it has a jet
    tagger, what rebuilds it ({model_config, task}); loadable with torch.load(weights_only=True)."""
    from hhfm.io import atomic_path

    tagger = None if model.tagger is None else {"model_config": dict(model.tagger.backbone.config),
                                                 "task": model.tagger.task}
    blob = {"format": HEAD_FORMAT, "model": name, "tagger": tagger,
            "state_dict": {k: t.detach().cpu() for k, t in model.state_dict().items()}}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_run_tagger(path) -> nn.Module | None:
    """The jet tagger (backbone + task head, eval mode) with the weights a head run ended with; None if the
    run had none (standard, frozen on a cache). Weights are matched by name; any mismatch raises InputError."""
    from hhfm.errors import InputError
    from hhfm.models import JetTagger, build_backbone, load_weights_by_name

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        raise InputError(f"{path}: cannot read the head model ({err})") from err
    if not isinstance(blob, dict) or blob.get("format") != HEAD_FORMAT:
        raise InputError(f"{path}: not an hhfm head model (missing format={HEAD_FORMAT!r})")
    if blob["tagger"] is None:
        return None
    tagger = JetTagger(build_backbone(blob["tagger"]["model_config"]), blob["tagger"]["task"])
    weights = {k.removeprefix("tagger."): t for k, t in blob["state_dict"].items() if k.startswith("tagger.")}
    missing, unexpected = load_weights_by_name(tagger, weights)
    if missing or unexpected:
        raise InputError(f"{path}: tagger weights do not match its config (missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]})")
    return tagger.eval()
