"""`hhfm represent`: what fine-tuning does to the representation (Ho et al., arXiv:2412.10665).

On one seeded sample of test-event jets, for the pretrained backbone and every head run that trained
its backbone (finetuned, scratch), writes to `--outdir` (hhfm.layout.REPRESENT_TABLES):
- `cka.csv`: linear CKA between every layer of the pretrained backbone (`layer_a`) and every layer of
  the run's backbone (`layer_b`); the minibatch estimator when `represent.cka_batch_size` > 0;
- `embedding_auc.csv`: the H->bb vs QCD AUC of each jet-embedding dimension, pretrained and per run;
- `latent.parquet`: 2-D t-SNE maps of the pretrained and of one fine-tuned embedding
  (`represent.latent_model` at its largest fraction and first seed), with jet class and event label.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hhfm import config, layout
from hhfm.heads.model import load_run_tagger
from hhfm.io import setup_logging
from hhfm.represent.cka import linear_cka, minibatch_cka
from hhfm.represent.jets import TestJets, layer_representations, sample_test_jets
from hhfm.represent.latent import dimension_aucs, tsne_map

log = logging.getLogger("hhfm.represent")
SECTIONS = ["seed", "represent"]
PRETRAINED = "pretrained"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="{}", help="JSON {'seed': N, 'represent': {...}}: the tracked config")
    parser.add_argument("--dataset", required=True, help="results/skim/dataset.h5")
    parser.add_argument("--pretrained", required=True, help="backbone.pt of the heads' pretraining task")
    parser.add_argument("--runs", nargs="*", default=[], help="head run directories with model.pt and run.json")
    parser.add_argument("--outdir", required=True, help="output directory (results/summary)")


def cka_matrix(a: dict[str, np.ndarray], b: dict[str, np.ndarray], batch_size: int, seed: int) -> list[dict]:
    """CKA of every layer pair (layer_a of `a`, layer_b of `b`); minibatch estimator if batch_size > 0."""
    n = len(next(iter(a.values())))
    use_minibatch = 0 < batch_size <= n // 2
    fn = (lambda x, y: minibatch_cka(x, y, batch_size, seed)) if use_minibatch else linear_cka
    return [{"layer_a": la, "layer_b": lb, "cka": fn(xa, xb)} for la, xa in a.items() for lb, xb in b.items()]


def _auc_rows(source: dict, embedding: np.ndarray, jets: TestJets) -> list[dict]:
    return [{**source, "dim": d, "auc": v} for d, v in enumerate(dimension_aucs(embedding, jets.label_xbb))]


def _latent_run(runs: list[tuple[dict, np.ndarray]], model: str) -> tuple[dict, np.ndarray] | None:
    """The run whose embedding the latent map shows: `model` at its largest fraction, first seed."""
    chosen = [r for r in runs if r[0]["model"] == model]
    return max(chosen, key=lambda r: (float(r[0]["fraction"]), -int(r[0]["seed"]))) if chosen else None


def _latent_rows(name: str, embedding: np.ndarray, jets: TestJets, p: config.Section, seed: int) -> pd.DataFrame:
    n = min(len(jets), int(p.latent_jets))
    xy = tsne_map(embedding[:n], float(p.perplexity), seed)
    return pd.DataFrame({"embedding": name, "jet": jets.rows[:n], "label_class": jets.label_class[:n],
                         "label_xbb": jets.label_xbb[:n], "event_label": jets.event_label[:n],
                         "x": xy[:, 0], "y": xy[:, 1]})


def study(cfg: config.Section, dataset: str, pretrained: str, run_dirs: list[str]) -> dict[str, pd.DataFrame]:
    """The three tables (module docstring) as data frames."""
    from hhfm.models import load_tagger

    p, seed = cfg.represent, int(cfg.seed)
    jets = sample_test_jets(dataset, int(p.n_jets), seed)
    pre = layer_representations(load_tagger(pretrained)[0], jets)
    log.info("%d test jets, pretrained layers %s", len(jets), list(pre))
    empty = {c: None for c in layout.RUN_COLUMNS}
    cka_rows, auc_rows, runs = [], _auc_rows({**empty, "embedding": PRETRAINED}, pre["output"], jets), []
    for d in run_dirs:
        run = layout.read_run(Path(d) / "run.json")
        tagger = load_run_tagger(Path(d) / "model.pt")
        if tagger is None:
            log.info("%s: no backbone of its own (skipped)", d)
            continue
        reps = layer_representations(tagger, jets)
        labels = layout.run_labels(run)
        cka_rows += [{**labels, **row}
                     for row in cka_matrix(pre, reps, int(p.cka_batch_size), seed)]
        auc_rows += _auc_rows({**labels, "embedding": run["model"]}, reps["output"], jets)
        runs.append((run, reps["output"]))
        log.info("%s: CKA(pretrained, run) at the output %.3f", d, cka_rows[-1]["cka"])
    latent = [_latent_rows(PRETRAINED, pre["output"], jets, p, seed)]
    chosen = _latent_run(runs, str(p.latent_model))
    if chosen is not None:
        run, emb = chosen
        latent.append(_latent_rows(f"{run['model']} f={layout.fmt_fraction(run['fraction'])} s={run['seed']}",
                                   emb, jets, p, seed))
    cka_cols = [*layout.RUN_COLUMNS, "layer_a", "layer_b", "cka"]
    return {"cka.csv": pd.DataFrame(cka_rows, columns=cka_cols),
            "embedding_auc.csv": pd.DataFrame(auc_rows, columns=["embedding", *layout.RUN_COLUMNS, "dim", "auc"]),
            "latent.parquet": pd.concat(latent, ignore_index=True)}


def run(args: argparse.Namespace) -> None:
    setup_logging()
    cfg = config.load(args.config, sections=SECTIONS)
    tables = study(cfg, args.dataset, args.pretrained, args.runs)
    for name, frame in tables.items():
        layout.write_table(frame, Path(args.outdir) / name)
    log.info("wrote %s", ", ".join(str(Path(args.outdir) / n) for n in tables))
