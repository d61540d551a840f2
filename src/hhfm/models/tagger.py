"""Jet taggers on top of a backbone (ParT or ParticleNet): task heads, checkpoint save/load, loading weights by name.

A tagger checkpoint (`backbone.pt`) is a plain dict loadable with `torch.load(weights_only=True)`:
    {"format": "hhfm-tagger-v1", "model_config": {...}, "task": str, "state_dict": {...}, "meta": {...}}
`load_tagger` rebuilds the module from `model_config` + `task` and loads the weights.
"""

from __future__ import annotations

import logging
import os
from typing import Mapping

import torch
import torch.nn as nn

from hhfm import config
from hhfm.errors import ConfigError, InputError
from hhfm.features import JET_CLASSES, JETCLASS_CLASSES, REGRESSION_TARGETS
from hhfm.io import atomic_path
from hhfm.models.particle_transformer import ParticleTransformer
from hhfm.models.particlenet import PUBLISHED_CONFIG, PUBLISHED_PARTICLENET, ParticleNetBackbone, particlenet_config

log = logging.getLogger("hhfm.models")

CHECKPOINT_FORMAT = "hhfm-tagger-v1"
N_CLASSES = len(JET_CLASSES)
H_BB = JET_CLASSES.index("H_bb")
JETCLASS_HBB, JETCLASS_QCD = JETCLASS_CLASSES.index("Hbb"), JETCLASS_CLASSES.index("QCD")
#: task -> number of outputs: xbb = 1 logit; multiclass = class logits; multilabel = class logits + regressions;
#: jetclass = the 10 JetClass class logits (JETCLASS_CLASSES order, the published models' output)
TASK_OUTPUTS = {"xbb": 1, "multiclass": N_CLASSES, "multilabel": N_CLASSES + len(REGRESSION_TARGETS),
                "jetclass": len(JETCLASS_CLASSES)}


def model_config(model_cfg: Mapping[str, object] | None) -> dict:
    """Full model config: `model_cfg` validated against the schema (config.schema.yaml `model`, the one
    source of the defaults) with unset keys filled; a bad or unknown key raises ConfigError naming it."""
    cfg = config.check({"model": dict(model_cfg or {})}, ["model"], "model configuration")["model"]
    for key, prop in config.section_schema("model")["properties"].items():  # JSON integers may be floats (2.0)
        if prop.get("type") == "integer":
            cfg[key] = int(cfg[key])
        elif prop.get("items", {}).get("type") == "integer":
            cfg[key] = [int(d) for d in cfg[key]]
    return cfg


def build_backbone(model_cfg: Mapping[str, object] | None = None) -> nn.Module:
    """Backbone from the config `model` section, by its `architecture` key: "part" (default; ParticleTransformer,
    missing keys = paper defaults) or "particlenet" (ParticleNetBackbone, missing keys = PUBLISHED_CONFIG)."""
    cfg = dict(model_cfg or {})
    arch = cfg.pop("architecture", "part")
    if arch == "particlenet":
        return ParticleNetBackbone(**{k: v for k, v in particlenet_config(cfg).items() if k != "architecture"})
    if arch != "part":
        raise ConfigError(f"model architecture must be 'part' or 'particlenet', got {arch!r}")
    return ParticleTransformer(**model_config(cfg))


class JetTagger(nn.Module):
    """Backbone + one linear task head: forward(x, v, mask) -> logits (B, TASK_OUTPUTS[task])."""

    def __init__(self, backbone: nn.Module, task: str):
        super().__init__()
        if task not in TASK_OUTPUTS:
            raise ConfigError(f"task must be one of {sorted(TASK_OUTPUTS)}, got {task!r}")
        self.task = task
        self.backbone = backbone
        self.head = nn.Linear(backbone.embed_dim, TASK_OUTPUTS[task])

    def forward(self, x: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x, v, mask))

    def xbb_score(self, logits: torch.Tensor) -> torch.Tensor:
        """P(H->bb) in [0, 1] per jet (B,) for every task; jetclass: p(Hbb) / (p(Hbb) + p(QCD)) of the softmax,
        computed as sigmoid(logit_Hbb - logit_QCD) (identical, and finite when both probabilities underflow)."""
        logits = logits.float()
        if self.task == "xbb":
            return torch.sigmoid(logits[:, 0])
        if self.task == "jetclass":
            return torch.sigmoid(logits[:, JETCLASS_HBB] - logits[:, JETCLASS_QCD])
        return torch.softmax(logits[:, :N_CLASSES], dim=1)[:, H_BB]


def save_tagger(path: str | os.PathLike, tagger: JetTagger, meta: Mapping[str, object] | None = None) -> None:
    """Write a self-describing tagger checkpoint atomically (see module docstring)."""
    blob = {"format": CHECKPOINT_FORMAT, "model_config": dict(tagger.backbone.config), "task": tagger.task,
            "state_dict": {k: t.detach().cpu() for k, t in tagger.state_dict().items()}, "meta": dict(meta or {})}
    with atomic_path(path) as tmp:
        torch.save(blob, tmp)


def load_tagger(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> tuple[JetTagger, dict]:
    """Rebuild a tagger from `save_tagger` output -> (tagger in eval mode, meta)."""
    blob = _load(path, map_location)
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path}: not an hhfm tagger checkpoint (missing format={CHECKPOINT_FORMAT!r})")
    tagger = JetTagger(build_backbone(blob["model_config"]), blob["task"])
    missing, unexpected = load_weights_by_name(tagger, blob["state_dict"])
    if missing or unexpected:
        raise InputError(f"{path}: state_dict does not match its model_config "
                         f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
    tagger.to(map_location).eval()
    return tagger, dict(blob.get("meta", {}))


def load_weights_by_name(module: nn.Module, state_dict: Mapping[str, torch.Tensor],
                         strict: bool = False) -> tuple[list[str], list[str]]:
    """Copy tensors whose name and shape match -> (missing, unexpected); shape mismatches count as both.

    Logs a warning listing mismatches; `strict=True` raises InputError instead.
    """
    own = module.state_dict()
    usable, shape_bad = {}, []
    for name, tensor in state_dict.items():
        if name in own and own[name].shape == tensor.shape:
            usable[name] = tensor
        elif name in own:
            shape_bad.append(f"{name} {tuple(tensor.shape)}!={tuple(own[name].shape)}")
    result = module.load_state_dict(usable, strict=False)
    missing = sorted(set(result.missing_keys))
    unexpected = sorted(set(state_dict) - set(usable))
    if missing or unexpected:
        msg = (f"weights loaded by name: {len(usable)} tensors; missing {len(missing)} {missing[:8]}, "
               f"unexpected {len(unexpected)} {unexpected[:8]}" + (f", shape mismatch {shape_bad[:4]}" if shape_bad else ""))
        if strict:
            raise InputError(msg)
        log.warning(msg)
    return missing, unexpected


def convert_weaver_state_dict(state_dict: Mapping[str, torch.Tensor], num_heads: int = 8) -> dict[str, torch.Tensor]:
    """weaver ParT state dict (0.4.x or 0.5.x, optionally under `mod.`) -> our backbone's names.

    0.4.x checkpoints (nn.MultiheadAttention: `attn.in_proj_weight`) apply the head scale with a
    channel permutation (h, d) -> (d, h); that is folded into `attn.out_proj` and `c_attn` set to 1
    (shared/model_notes.md 1.7), so the official JetClass ParT_*.pt give the outputs they gave in 0.4.
    The classifier `fc.*` is kept under its name (reported as unexpected by a backbone).
    """
    sd = {(k[4:] if k.startswith("mod.") else k): t for k, t in state_dict.items()}
    is_04 = any(k.endswith("attn.in_proj_weight") for k in sd)
    out: dict[str, torch.Tensor] = {}
    for k, t in sd.items():
        k = k.replace("attn.in_proj_weight", "attn.in_proj.weight").replace("attn.in_proj_bias", "attn.in_proj.bias")
        out[k] = t
    if is_04:
        prefixes = {k[: -len("c_attn")] for k in out if k.endswith(".c_attn")}
        for p in prefixes:
            c = out[p + "c_attn"].float()
            H = c.numel()
            w, b = out[p + "attn.out_proj.weight"], out[p + "attn.out_proj.bias"]
            D = w.shape[0]
            hd = D // H
            # new channel d*H + h = c[h] * old channel h*hd + d
            w3 = (w.view(H, hd, -1) * c.view(H, 1, 1)).transpose(0, 1).reshape(D, -1)
            b3 = (b.view(H, hd) * c.view(H, 1)).transpose(0, 1).reshape(D)
            out[p + "attn.out_proj.weight"], out[p + "attn.out_proj.bias"] = w3.to(w.dtype), b3.to(b.dtype)
            out[p + "c_attn"] = torch.ones_like(out[p + "c_attn"])
    return out


def load_weaver_checkpoint(backbone: ParticleTransformer, path: str | os.PathLike,
                           map_location: str | torch.device = "cpu") -> tuple[list[str], list[str]]:
    """Load a weaver/JetClass ParT checkpoint (e.g. ParT_full.pt) into `backbone` by name -> (missing, unexpected)."""
    sd = _load(path, map_location)
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    return load_weights_by_name(backbone, convert_weaver_state_dict(sd, backbone.num_heads))


def convert_particlenet_state_dict(state_dict: Mapping[str, torch.Tensor], n_hidden_fc: int) -> dict[str, torch.Tensor]:
    """weaver ParticleNet state dict (optionally under `mod.`) -> JetTagger names: the final classifier
    `fc.{n_hidden_fc}.*` -> `head.*`, everything else -> `backbone.*` (same names as weaver)."""
    head = f"fc.{int(n_hidden_fc)}."
    out: dict[str, torch.Tensor] = {}
    for k, t in state_dict.items():
        k = k[4:] if k.startswith("mod.") else k
        out["head." + k[len(head):] if k.startswith(head) else "backbone." + k] = t
    return out


def load_published_particlenet(path: str | os.PathLike = PUBLISHED_PARTICLENET,
                               map_location: str | torch.device = "cpu") -> JetTagger:
    """The published JetClass ParticleNet (PUBLISHED_CONFIG, task "jetclass") in eval mode; any missing,
    unexpected or misshapen tensor raises InputError naming the file. Default path: relative to the repo root."""
    sd = _load(path, map_location)
    if not isinstance(sd, Mapping) or not all(isinstance(t, torch.Tensor) for t in sd.values()):
        raise InputError(f"{path}: not a ParticleNet state_dict (expected a dict of tensors)")
    tagger = JetTagger(build_backbone(PUBLISHED_CONFIG), "jetclass")
    try:
        load_weights_by_name(tagger, convert_particlenet_state_dict(sd, len(PUBLISHED_CONFIG["fc_params"])),
                             strict=True)
    except InputError as err:
        raise InputError(f"{path}: does not match the published ParticleNet ({err})") from err
    return tagger.to(map_location).eval()


def _load(path: str | os.PathLike, map_location) -> object:
    if not os.path.exists(path):
        raise InputError(f"{path}: checkpoint file does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # unpickling / zip errors: name the file
        raise InputError(f"{path}: cannot load checkpoint with weights_only=True ({err})") from err


def build_tagger(model_cfg: Mapping[str, object] | None, task: str) -> JetTagger:
    """Backbone from the config `model` section + a head for `task`."""
    return JetTagger(build_backbone(model_cfg), task)
