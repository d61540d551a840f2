"""`hhfm plots`: the study's figures from the summary tables and saved test scores (never a model).

Every figure in `FIGURES` is written as `{outdir}/{name}.pdf` and `.png`; the workflow wraps each in
`report()` with the caption `workflow/report/{name}.rst`. A figure whose inputs are empty (say,
one training fraction only) is still written, with a note saying what is missing.
"""

from __future__ import annotations

import argparse

#: figure name -> one-line description (the captions in workflow/report/ say more)
FIGURES: dict[str, str] = {
    "rejection_vs_events_eff90": "background rejection at 90 % signal efficiency vs training events, ratio to the reference",
    "rejection_vs_events_eff90_weighted": "the same with cross-section-weighted test events (the physical background mix)",
    "rejection_vs_events_eff50": "background rejection at 50 % signal efficiency vs training events, ratio to the reference",
    "auc_vs_events": "AUC vs training events",
    "data_efficiency": "data-efficiency factors vs the reference model",
    "roc_full_data": "ROC curves (rejection vs signal efficiency) at full training data, ratio to the reference",
    "limits_vs_mass": "expected 95 % CL limits on sigma x BR vs signal mass with 1/2 sigma bands (full data)",
    "limit_vs_events": "expected limit at one mass vs training events",
    "jet_roc": "jet level: pretrained Xbb score vs fj_doubleb",
    "training_curves": "training and validation loss of every head run",
    "score_distributions": "event-score distributions of signal (per mass) and background",
    "sculpting": "soft-drop mass of background before and after a cut on the event score",
    "cka_layers": "layer-by-layer linear CKA between the pretrained and a fine-tuned backbone",
    "cka_vs_events": "CKA(pretrained, trained backbone) at the jet embedding vs training events",
    "latent_maps": "t-SNE maps of pretrained and fine-tuned jet embeddings by jet class and event label",
    "embedding_auc": "per-dimension H->bb vs QCD AUC of each jet embedding",
    "rejection_vs_compute": "rejection at 90 % signal efficiency vs training compute, pretraining in full or amortised",
    "domain_adaptation": "rejection at 90 % signal efficiency vs training events of heads on each pretraining source",
}
FORMATS = ("pdf", "png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="{}", help="JSON {'plots': {...}, 'evaluate': {...}, 'represent': {...}}: the tracked config")
    parser.add_argument("--summary", required=True, help="summary directory (aggregated.csv, limits.csv, ...)")
    parser.add_argument("--runs", nargs="*", default=[],
                        help="head run directories (metrics.csv, scores.parquet, run.json)")
    parser.add_argument("--jet-scores", nargs="*", default=[], metavar="TASK=PATH",
                        help="jet_scores.parquet of each pretrained backbone, named by its pretraining task")
    parser.add_argument("--default-backbone", default="xbb",
                        help="backbone of head models without an @ suffix (heads.backbone_task or pretrain.task)")
    parser.add_argument("--outdir", required=True, help="figure directory (results/plots)")


def run(args: argparse.Namespace) -> None:
    from hhfm.plots.figures import make_all

    make_all(args)
