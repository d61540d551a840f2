"""Jet models: the Particle Transformer and ParticleNet backbones, task heads and checkpoint helpers.

    backbone = build_backbone(config["model"])          # ParticleTransformer: (x, v, mask) -> (B, D)
    tagger = JetTagger(backbone, "xbb")                 # (x, v, mask) -> logits; tagger.xbb_score(logits)
    tagger, meta = load_tagger("results/pretrain/xbb/backbone.pt")
"""

from hhfm.models.inputs import MASK_VALUE, pair_features, trim_to_longest
from hhfm.models.particle_transformer import ParticleTransformer
from hhfm.models.tagger import (
    H_BB,
    N_CLASSES,
    TASK_OUTPUTS,
    JetTagger,
    build_backbone,
    build_tagger,
    convert_weaver_state_dict,
    load_published_particlenet,
    load_tagger,
    load_weaver_checkpoint,
    load_weights_by_name,
    model_config,
    save_tagger,
)

__all__ = [
    "MASK_VALUE", "ParticleTransformer", "pair_features", "trim_to_longest", "H_BB", "N_CLASSES",
    "TASK_OUTPUTS", "JetTagger", "build_backbone", "build_tagger", "convert_weaver_state_dict", "load_tagger",
    "load_published_particlenet", "load_weaver_checkpoint", "load_weights_by_name", "model_config", "save_tagger",
]
