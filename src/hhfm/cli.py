"""The `hhfm` command: one subcommand per pipeline stage.

Each stage module exposes `add_arguments(parser)` and `run(args) -> None`; this file only
dispatches, so adding a stage never touches another stage's code. Modules are imported lazily
so `hhfm --help` stays fast and a stage's heavy imports (torch, pythia8mc) load only when used.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand -> (module, one-line help)
STAGES: dict[str, tuple[str, str]] = {
    "simulate": ("hhfm.simulate", "generate record-format ROOT files with Pythia 8 + FastJet"),
    "simulate-jetclass": ("hhfm.simulate.jetclass", "generate a JetClass-format ROOT file of one class with Pythia 8"),
    "opendata-files": ("hhfm.opendata", "write the CMS record's 91 ROOT file URLs as a config overlay"),
    "record-layout": ("hhfm.opendata.record_layout", "rewrite per-sample simulated files in the record's layout"),
    "skim": ("hhfm.skim", "skim record-format ROOT files to training-ready HDF5"),
    "merge-skim": ("hhfm.skim.merge", "merge per-file skims into one dataset with splits and fractions"),
    "skim-jetclass": ("hhfm.jetclass", "read JetClass-format ROOT files into a jet-level training dataset"),
    "pretrain": ("hhfm.pretrain", "pretrain the ParT backbone on a jet task"),
    "embed": ("hhfm.heads.embed", "cache frozen-backbone jet embeddings and scores"),
    "train-head": ("hhfm.heads", "train one event-level head (representation x strategy x fraction x seed)"),
    "evaluate": ("hhfm.evaluate", "metrics of one head run from its saved test scores"),
    "summarise": ("hhfm.evaluate.summarise", "merge per-run metrics into tidy tables"),
    "claims": ("hhfm.evaluate.claims", "check the seed documents' claims against a summary directory"),
    "publish": ("hhfm.evaluate.publish", "copy a run's tables and figures with its command, config and versions"),
    "represent": ("hhfm.represent", "CKA, latent maps and per-dimension AUCs of pretrained vs fine-tuned backbones"),
    "limits": ("hhfm.limits", "pyhf expected limits from saved test scores"),
    "merge-limits": ("hhfm.limits.merge", "merge per-run limit tables into results/summary/limits.csv"),
    "plots": ("hhfm.plots", "the study's figures from the summary tables"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hhfm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, (module, helptext) in STAGES.items():
        sub.add_parser(name, help=helptext, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in STAGES:
        build_parser().parse_args(argv)  # prints help / error and exits
        return 2
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(STAGES[name][0])
    parser = argparse.ArgumentParser(prog=f"hhfm {name}", description=STAGES[name][1])
    module.add_arguments(parser)
    args = parser.parse_args(rest)
    try:
        module.run(args)
    except HhfmError as err:  # user-facing errors: one clear line, no traceback
        print(f"hhfm {name}: error: {err}", file=sys.stderr)
        return 1
    return 0


from hhfm.errors import HhfmError  # noqa: E402  (kept at the bottom: errors imports nothing heavy)

if __name__ == "__main__":
    sys.exit(main())
