"""`hhfm claims`: check the seed documents' claims against a summary directory (README "hhfm claims").

Every claim is one `Claim` entry in `CLAIMS`: the models it compares, the metric, the training size
("full" = each model's largest fraction; "smallest" = the smallest fraction both models ran), the
comparison and its threshold. A claim is checked on the 68 % interval of the measured quantity:

- ratio of two means (aggregated.csv): r = a / b, with ln r's errors from the ln-space errors of a and b added
  in quadrature: sigma_lo = sqrt(dn(a)^2 + up(b)^2), sigma_hi = sqrt(up(a)^2 + dn(b)^2), where
  up(x) = ln(1 + err_hi/x) and dn(x) = -ln(1 - err_lo/x) (inf if err_lo >= x); interval
  [r exp(-sigma_lo), r exp(+sigma_hi)] (for small errors: the relative errors in quadrature). A capped numerator (a lower bound) opens the
  upper edge (+inf), a capped denominator opens the lower edge (0).
- data-efficiency factor (data_efficiency.csv): [factor_lo, factor_hi]; bound `at_most` (the factor is a
  lower bound) opens the upper edge, `more_than` and `capped` (the true target is higher: an upper bound)
  open the lower edge.
- expected limits (limits.csv): per model and mass the median of mu_exp over seeds with error
  std / sqrt(n) over seeds (0 for one seed), then the ratio as above. Any seed with `mc_stat_flag`
  makes the verdict `inconclusive` (the test set cannot tell, README "Stage: limits").

Verdicts: `holds` (the whole interval satisfies the comparison), `fails` (the whole interval violates it),
`inconclusive` (it straddles the threshold), `not run` (a model or row the claim needs is absent).
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hhfm.errors import InputError
from hhfm.io import setup_logging
from hhfm.layout import fmt_fraction, mass_label, write_table

log = logging.getLogger("hhfm.claims")

#: placeholder for the reference model (`--reference`, default `standard`) in a claim's models
REFERENCE = "{reference}"
HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = "holds", "fails", "inconclusive", "not run"
#: columns each table must have (summarise's aggregated.csv / data_efficiency.csv, merge-limits' limits.csv)
AGGREGATED_COLUMNS = ["model", "fraction", "mass", "metric", "n", "mean", "err_lo", "err_hi", "capped"]
EFFICIENCY_COLUMNS = ["reference", "model", "mass", "metric", "factor", "factor_lo", "factor_hi", "bound"]
LIMITS_COLUMNS = ["model", "fraction", "seed", "mass", "mu_exp"]
OUTPUT_COLUMNS = ["id", "claim", "source", "measured", "lo", "hi", "seed_value", "verdict", "comparison", "metric",
                  "models", "fractions", "mass", "note", "auc", "auc_lo", "auc_hi", "auc_verdict"]


@dataclass(frozen=True)
class Claim:
    """One checkable claim: what is measured (kind, models, metric, size) and the comparison it must pass.

    kind: `ratio` (mean of `numerator` / mean of `denominator`), `efficiency` (data-efficiency factor of
    `numerator` vs the reference), `limit` (mu_exp ratio per signal mass), `all_of` (every claim in `parts`).
    op: `>`, `>=`, `<` against `threshold`, or `~` (consistent with `threshold` within a factor `margin`).
    auc: also check the same models' AUC ratio in the ranking direction (`>` or `<` 1).
    """

    id: str
    text: str
    source: str
    kind: str
    numerator: str = ""
    denominator: str = REFERENCE
    metric: str = "rej90"
    fraction: str = "full"
    op: str = ">"
    threshold: float = 1.0
    margin: float = 1.0
    seed_value: str = ""
    auc: bool = False
    paper_value: float | None = None
    parts: tuple[str, ...] = ()


#: sources: the IML 2024 talk (seeds/001), the paper's abstract (seeds/000), reference_study_notes.md §5 (survey)
TALK, NOTES = "talk", "notes §5"
#: the claims, in report order (a compound claim after its parts)
CLAIMS: list[Claim] = [
    Claim("C1", "fine-tuning gives ~2x the standard approach's rejection (rej90, full data)", f"{TALK}: Conclusions",
          "ratio", "embedding-finetuned", REFERENCE, op=">=", threshold=2.0, seed_value="2x", auc=True),
    Claim("C2", "fine-tuning gives 10-100x data efficiency vs the standard approach (rej90)",
          f"{TALK}: Conclusions; abstract", "efficiency", "embedding-finetuned", op=">=", threshold=10.0,
          seed_value="10-100x (53 S+HLF, 67 V+HLF, 14 V-only)"),
    Claim("C3a", "full data: fine-tuned > frozen (embedding+HLF)", NOTES, "ratio", "embedding-finetuned",
          "embedding-frozen", seed_value="640/390 = 1.64", auc=True, paper_value=640 / 390),
    Claim("C3b", "full data: fine-tuned embedding+HLF > frozen score+HLF", NOTES, "ratio", "embedding-finetuned",
          "score-frozen", seed_value="640/350 = 1.83", auc=True, paper_value=640 / 350),
    Claim("C3c", "full data: fine-tuned > from scratch (embedding+HLF)", NOTES, "ratio", "embedding-finetuned",
          "embedding-scratch", seed_value="640/540 = 1.19 (scratch 540-590)", auc=True, paper_value=640 / 540),
    Claim("C4", "'high dim embeddings help for frozen': embedding+HLF > score+HLF, frozen", TALK, "ratio",
          "embedding-frozen", "score-frozen", seed_value="390/350 = 1.11", auc=True, paper_value=390 / 350),
    Claim("C5", "'dimensionality less important end-to-end': fine-tuned embedding / score ~ 1 (+-25 %)", TALK,
          "ratio", "embedding-finetuned", "score-finetuned", op="~", threshold=1.0, margin=1.25,
          seed_value="640/550 = 1.16", paper_value=640 / 550),
    Claim("C6a", "full data: from scratch > frozen (embedding+HLF)", f"{TALK}; {NOTES}", "ratio", "embedding-scratch",
          "embedding-frozen", seed_value="540/390 = 1.38", auc=True, paper_value=540 / 390),
    Claim("C6b", "smallest common fraction: from scratch < frozen (embedding+HLF)", TALK, "ratio",
          "embedding-scratch", "embedding-frozen", fraction="smallest", op="<", seed_value="below (figure)", auc=True),
    Claim("C6", "'from scratch eventually surpasses frozen, it's just slow' (C6a and C6b)", TALK, "all_of",
          parts=("C6a", "C6b")),
    Claim("C7a", "fine-tuning's data efficiency vs the standard approach, on AUC", f"{TALK}: Conclusions (AUC)",
          "efficiency", "embedding-finetuned", metric="auc", op=">=", threshold=10.0, seed_value="10-100x (rej90)"),
    Claim("C7b", "'high-dim embeddings also useful in the frozen case': frozen data efficiency > 1", TALK,
          "efficiency", "embedding-frozen", seed_value="> 1"),
    Claim("C8a", "domain adaptation: JetClass-initialised Xbb backbone > Xbb (frozen embedding+HLF)", TALK, "ratio",
          "embedding-frozen@jetclass_xbb", "embedding-frozen", seed_value="helps (lowest val loss, notes §4)",
          auc=True),
    Claim("C8b", "domain adaptation: JetClass ParticleNet > Xbb backbone (frozen embedding+HLF)", TALK, "ratio",
          "embedding-frozen@particlenet_jetclass", "embedding-frozen", seed_value="helps", auc=True),
    Claim("C9", "physics reach: fine-tuned mu_exp < standard's at every signal mass (full data)", "ours", "limit",
          "embedding-finetuned", REFERENCE, metric="mu_exp", op="<", seed_value="- (no limits in the study)"),
]


@dataclass(frozen=True)
class Summary:
    """The tables a summary directory holds (limits None when limits.csv is absent)."""

    directory: Path
    aggregated: pd.DataFrame
    efficiency: pd.DataFrame
    limits: pd.DataFrame | None


@dataclass(frozen=True)
class Point:
    """One measured mean with its 68 % errors; `capped`: only a lower bound."""

    value: float
    err_lo: float
    err_hi: float
    capped: bool = False


@dataclass(frozen=True)
class Interval:
    """A measured value and its 68 % interval (0 or inf where a bound leaves an edge open)."""

    value: float
    lo: float
    hi: float


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--summary", required=True, help="summary directory (results/summary)")
    parser.add_argument("--output", help="claims table (CSV) to write")
    parser.add_argument("--reference", default="standard", help="the standard approach's model (default standard)")
    parser.add_argument("--mass", default="all", help="signal mass (GeV) of the metric claims, or 'all' "
                        "(inclusive; C9 then checks every mass)")
    parser.add_argument("--weighted", action="store_true",
                        help="judge the metric claims on the cross-section-weighted metrics (rej90_weighted, ...): "
                             "the physical background mix, e.g. for a biased QCD sample")


# ------------------------------------------------------------------------------------------- input
def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    """A summary table, checking it exists and has `columns` (InputError naming file and columns)."""
    if not path.exists():
        raise InputError(f"{path}: file does not exist")
    try:
        df = pd.read_csv(path, dtype={"mass": str})
    except pd.errors.EmptyDataError as err:
        raise InputError(f"{path}: empty file, expected columns {columns}") from err
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}")
    return df


def _as_bool(column: pd.Series) -> pd.Series:
    """A True/False column as CSV round-trips it (bool, or the strings 'True'/'False')."""
    return column.astype(str).str.lower() == "true"


def load_summary(directory: str | Path) -> Summary:
    """aggregated.csv and data_efficiency.csv (required) and limits.csv (optional) of a summary directory."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: summary directory does not exist")
    agg = _read_csv(directory / "aggregated.csv", AGGREGATED_COLUMNS)
    agg = agg.assign(capped=_as_bool(agg["capped"]), fkey=agg["fraction"].map(fmt_fraction))
    eff = _read_csv(directory / "data_efficiency.csv", EFFICIENCY_COLUMNS)
    limits = None
    if (directory / "limits.csv").exists():
        limits = _read_csv(directory / "limits.csv", LIMITS_COLUMNS)
        flag = _as_bool(limits["mc_stat_flag"]) if "mc_stat_flag" in limits else False
        limits = limits.assign(mass=limits["mass"].map(lambda m: mass_label(float(m))), mc_stat_flag=flag)
    return Summary(directory, agg, eff, limits)


def use_weighted(summary: Summary) -> Summary:
    """The summary with every `<metric>_weighted` renamed to `<metric>` (the unweighted rows dropped), so each
    claim reads the cross-section-weighted metric; InputError if the summary has none."""
    tables = []
    for name, df in (("aggregated.csv", summary.aggregated), ("data_efficiency.csv", summary.efficiency)):
        weighted = df["metric"].str.endswith("_weighted")
        if name == "aggregated.csv" and not weighted.any():
            raise InputError(f"{summary.directory / name}: no *_weighted metric (evaluate.weighted was false?)")
        tables.append(df[weighted].assign(metric=df["metric"][weighted].str.removesuffix("_weighted")))
    return Summary(summary.directory, tables[0], tables[1], summary.limits)


def mass_key(mass: str) -> str:
    """`--mass` as the tables write it: 'all' or integer GeV ('1000.0' -> '1000')."""
    if mass == "all":
        return mass
    try:
        return mass_label(float(mass))
    except ValueError as err:
        raise InputError(f"--mass {mass!r}: expected a mass in GeV or 'all'") from err


# ---------------------------------------------------------------------------------- intervals
def _log_errors(p: Point) -> tuple[float, float]:
    """Errors of ln(value) down and up: -ln(1 - err_lo/value) (inf when the interval reaches 0), ln(1 + err_hi/value)."""
    down = -math.log1p(-p.err_lo / p.value) if p.err_lo < p.value else math.inf
    return down, math.log1p(p.err_hi / p.value)


def ratio(num: Point, den: Point) -> Interval:
    """num / den; the ln-space errors of both add in quadrature; capped edges left open (NaN if <= 0)."""
    if not (num.value > 0 and den.value > 0):
        return Interval(math.nan, math.nan, math.nan)
    r = num.value / den.value
    (n_down, n_up), (d_down, d_up) = _log_errors(num), _log_errors(den)
    s_lo, s_hi = math.hypot(n_down, d_up), math.hypot(n_up, d_down)
    lo, hi = r * math.exp(-s_lo), (r * math.exp(s_hi) if s_hi < 700 else math.inf)
    return Interval(r, 0.0 if den.capped else lo, math.inf if num.capped else hi)


def efficiency_interval(row: pd.Series) -> Interval:
    """[factor_lo, factor_hi], opened above for `at_most` (a lower bound), below for `more_than`/`capped`."""
    lo, hi = float(row["factor_lo"]), float(row["factor_hi"])
    if row["bound"] == "at_most":
        hi = math.inf
    elif row["bound"] in ("more_than", "capped"):
        lo = 0.0
    return Interval(float(row["factor"]), lo, hi)


def verdict(iv: Interval, op: str, threshold: float, margin: float = 1.0) -> str:
    """holds / fails / inconclusive of `interval op threshold` ('~': within a factor `margin` of it)."""
    lo, hi, t = iv.lo, iv.hi, threshold
    if any(math.isnan(x) for x in (iv.value, lo, hi)):
        return INCONCLUSIVE
    tests = {">": (lo > t, hi <= t), ">=": (lo >= t, hi < t), "<": (hi < t, lo >= t), "<=": (hi <= t, lo > t),
             "~": (lo >= t / margin and hi <= t * margin, hi < t / margin or lo > t * margin)}
    if op not in tests:
        raise ValueError(f"unknown comparison {op!r}")
    holds, fails = tests[op]
    return HOLDS if holds else FAILS if fails else INCONCLUSIVE


def comparison(claim: Claim) -> str:
    """The comparison in words: 'rej90 ratio >= 2', 'auc factor > 1', 'rej90 ratio within x1.25 of 1'."""
    if claim.kind == "all_of":
        return "all of " + ", ".join(claim.parts)
    quantity = claim.metric + (" factor" if claim.kind == "efficiency" else " ratio")
    if claim.op == "~":
        return f"{quantity} within x{claim.margin:g} of {claim.threshold:g}"
    return f"{quantity} {claim.op} {claim.threshold:g}"


# ------------------------------------------------------------------------------------ selection
def _rows(agg: pd.DataFrame, model: str, metric: str, mass: str) -> pd.DataFrame:
    """aggregated.csv rows of one model, metric and mass."""
    return agg[(agg["model"] == model) & (agg["metric"] == metric) & (agg["mass"] == mass)]


def _point(row: pd.Series) -> Point:
    """An aggregated.csv row as a Point."""
    return Point(float(row["mean"]), float(row["err_lo"]), float(row["err_hi"]), bool(row["capped"]))


def _pick(num: pd.DataFrame, den: pd.DataFrame, fraction: str) -> tuple[pd.Series, pd.Series] | None:
    """The rows compared: each model's largest fraction ('full') or the smallest fraction both ran."""
    if fraction == "full":
        return num.loc[num["fraction"].idxmax()], den.loc[den["fraction"].idxmax()]
    common = sorted(set(num["fkey"]) & set(den["fkey"]), key=float)
    if not common:
        return None
    return num[num["fkey"] == common[0]].iloc[0], den[den["fkey"] == common[0]].iloc[0]


def _models(claim: Claim, reference: str) -> tuple[str, str]:
    """The claim's (numerator, denominator) with the reference model filled in."""
    return (claim.numerator.replace(REFERENCE, reference), claim.denominator.replace(REFERENCE, reference))


def _row(claim: Claim, reference: str, mass: str, **values) -> dict:
    """One output row: the claim's fixed columns, then `values`."""
    num, den = _models(claim, reference)
    base = {"id": claim.id, "claim": claim.text, "source": claim.source, "seed_value": claim.seed_value,
            "comparison": comparison(claim), "metric": claim.metric, "models": f"{num} / {den}", "mass": mass}
    return {c: np.nan for c in OUTPUT_COLUMNS} | base | values


def _not_run(claim: Claim, reference: str, mass: str, note: str) -> dict:
    """A `not run` row with its reason."""
    return _row(claim, reference, mass, verdict=NOT_RUN, note=note)


def _measured(iv: Interval) -> dict:
    """The measured value and interval columns of a row."""
    return {"measured": iv.value, "lo": iv.lo, "hi": iv.hi}


def _paper_note(claim: Claim, iv: Interval) -> str:
    """Where the paper's value lies relative to the interval (empty when the claim has none)."""
    if claim.paper_value is None or math.isnan(iv.value):
        return ""
    where = "below" if claim.paper_value < iv.lo else "above" if claim.paper_value > iv.hi else "inside"
    return f"paper's {claim.paper_value:.2f} {where} the interval"


# ------------------------------------------------------------------------------------- checking
def check_ratio(claim: Claim, summary: Summary, reference: str, mass: str) -> list[dict]:
    """A ratio claim of two models' mean metric (and, if `claim.auc`, their AUC ranking)."""
    num_model, den_model = _models(claim, reference)
    agg = summary.aggregated
    absent = [m for m in (num_model, den_model) if m not in set(agg["model"])]
    if absent:
        return [_not_run(claim, reference, mass, f"absent from aggregated.csv: {', '.join(absent)}")]
    num, den = _rows(agg, num_model, claim.metric, mass), _rows(agg, den_model, claim.metric, mass)
    if num.empty or den.empty:
        return [_not_run(claim, reference, mass, f"no {claim.metric} rows at mass {mass}")]
    picked = _pick(num, den, claim.fraction)
    if picked is None:
        return [_not_run(claim, reference, mass, "no training fraction common to both models")]
    iv = ratio(_point(picked[0]), _point(picked[1]))
    notes = [_paper_note(claim, iv)] + [f"{m} capped (lower bound)" for m, r in zip((num_model, den_model), picked)
                                        if r["capped"]]
    row = _row(claim, reference, mass, **_measured(iv), verdict=verdict(iv, claim.op, claim.threshold, claim.margin),
               fractions=f"{fmt_fraction(picked[0]['fraction'])} / {fmt_fraction(picked[1]['fraction'])}",
               note="; ".join(n for n in notes if n))
    if claim.auc:
        row |= _auc_check(claim, agg, (num_model, den_model), picked, mass)
    return [row]


def _auc_check(claim: Claim, agg: pd.DataFrame, models: tuple[str, str], picked: tuple, mass: str) -> dict:
    """AUC ratio of the same models at the same fractions, checked in the claim's ranking direction."""
    rows = [_rows(agg, m, "auc", mass) for m in models]
    rows = [r[r["fkey"] == p["fkey"]] for r, p in zip(rows, picked)]
    if any(r.empty for r in rows):
        return {"auc_verdict": NOT_RUN}
    iv = ratio(_point(rows[0].iloc[0]), _point(rows[1].iloc[0]))
    op = "<" if claim.op in ("<", "<=") else ">"
    return {"auc": iv.value, "auc_lo": iv.lo, "auc_hi": iv.hi, "auc_verdict": verdict(iv, op, 1.0)}


def check_efficiency(claim: Claim, summary: Summary, reference: str, mass: str) -> list[dict]:
    """A data-efficiency claim: the model's factor vs the reference (data_efficiency.csv)."""
    eff = summary.efficiency
    model = claim.numerator
    if reference not in set(eff["reference"]):
        return [_not_run(claim, reference, mass, f"no data_efficiency.csv rows for reference {reference}")]
    rows = eff[(eff["reference"] == reference) & (eff["model"] == model)]
    if rows.empty:
        return [_not_run(claim, reference, mass, f"absent from data_efficiency.csv: {model}")]
    rows = rows[(rows["metric"] == claim.metric) & (rows["mass"] == mass)]
    if rows.empty:
        return [_not_run(claim, reference, mass, f"no {claim.metric} factor at mass {mass}")]
    row = rows.iloc[0]
    iv = efficiency_interval(row)
    note = f"bound {row['bound']}" if row["bound"] != "exact" else ""
    return [_row(claim, reference, mass, **_measured(iv), verdict=verdict(iv, claim.op, claim.threshold), note=note,
                 fractions="curve / largest")]


def _limit_point(rows: pd.DataFrame) -> Point:
    """Median mu_exp over seeds with error std / sqrt(n) (0 for one seed)."""
    values = rows["mu_exp"].to_numpy(float)
    err = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return Point(float(np.median(values)), err, err)


def _full_limits(limits: pd.DataFrame, model: str) -> pd.DataFrame:
    """limits.csv rows of a model at its largest fraction."""
    rows = limits[limits["model"] == model]
    return rows[rows["fraction"] == rows["fraction"].max()]


def check_limit(claim: Claim, summary: Summary, reference: str, mass: str) -> list[dict]:
    """mu_exp ratio per signal mass (one row each) and a summary row over the masses (every mass must hold)."""
    num_model, den_model = _models(claim, reference)
    if summary.limits is None:
        return [_not_run(claim, reference, mass, "limits.csv absent (run `snakemake limits`)")]
    absent = [m for m in (num_model, den_model) if m not in set(summary.limits["model"])]
    if absent:
        return [_not_run(claim, reference, mass, f"absent from limits.csv: {', '.join(absent)}")]
    num, den = _full_limits(summary.limits, num_model), _full_limits(summary.limits, den_model)
    masses = sorted(set(num["mass"]) & set(den["mass"]), key=float)
    masses = [m for m in masses if mass in ("all", m)]
    if not masses:
        return [_not_run(claim, reference, mass, f"no limits at mass {mass} for both models")]
    fractions = f"{fmt_fraction(num['fraction'].iloc[0])} / {fmt_fraction(den['fraction'].iloc[0])}"
    rows = [_limit_row(claim, reference, m, num[num["mass"] == m], den[den["mass"] == m], fractions) for m in masses]
    return [_limit_summary(claim, reference, mass, rows)] + rows


def _limit_row(claim: Claim, reference: str, mass: str, num: pd.DataFrame, den: pd.DataFrame, fractions: str) -> dict:
    """The mu_exp ratio at one signal mass; an MC-statistics flag makes it inconclusive."""
    iv = ratio(_limit_point(num), _limit_point(den))
    flagged = bool(num["mc_stat_flag"].any() or den["mc_stat_flag"].any())
    v = INCONCLUSIVE if flagged else verdict(iv, claim.op, claim.threshold)
    note = f"median of {len(num)} / {len(den)} seeds" + ("; mc_stat_flag: the test set cannot tell" if flagged else "")
    row = _row(claim, reference, mass, id=f"{claim.id}[M={mass}]", **_measured(iv), verdict=v, fractions=fractions,
               note=note)
    return row | {"claim": f"{claim.id} at M = {mass} GeV"}


def _limit_summary(claim: Claim, reference: str, mass: str, rows: list[dict]) -> dict:
    """One row over the masses: the least favourable mass's ratio and interval, the conjunction of the verdicts."""
    values = [r["measured"] for r in rows]
    worst = (max if claim.op in ("<", "<=") else min)(rows, key=lambda r: r["measured"])
    note = (f"{len(rows)} mass{'es' if len(rows) != 1 else ''}, ratios {min(values):.3g}-{max(values):.3g}; "
            f"least favourable M={worst['mass']}")
    return _row(claim, reference, mass, measured=worst["measured"], lo=worst["lo"], hi=worst["hi"],
                verdict=combine([r["verdict"] for r in rows]), fractions=rows[0]["fractions"], note=note)


def combine(verdicts: list[str]) -> str:
    """Verdict of a conjunction: fails if any part fails, not run if any is missing, holds if all hold."""
    if FAILS in verdicts:
        return FAILS
    if NOT_RUN in verdicts or not verdicts:
        return NOT_RUN
    return HOLDS if all(v == HOLDS for v in verdicts) else INCONCLUSIVE


def check_all_of(claim: Claim, done: dict[str, str], reference: str, mass: str) -> list[dict]:
    """A compound claim from the verdicts of its parts (checked before it)."""
    missing = [p for p in claim.parts if p not in done]
    if missing:
        raise ValueError(f"claim {claim.id}: parts {missing} must come before it in CLAIMS")
    parts = [done[p] for p in claim.parts]
    row = _row(claim, reference, mass, verdict=combine(parts),
               note=", ".join(f"{p} {v}" for p, v in zip(claim.parts, parts)))
    return [row | {"models": "", "metric": ""}]


CHECKS = {"ratio": check_ratio, "efficiency": check_efficiency, "limit": check_limit}


def check_claims(summary: Summary, reference: str = "standard", mass: str = "all",
                 claims: list[Claim] = CLAIMS) -> pd.DataFrame:
    """Every claim's measured value, interval and verdict, one row per claim (C9: plus one per mass)."""
    rows: list[dict] = []
    done: dict[str, str] = {}
    for claim in claims:
        if claim.kind == "all_of":
            new = check_all_of(claim, done, reference, mass)
        else:
            new = CHECKS[claim.kind](claim, summary, reference, mass)
        done[claim.id] = new[0]["verdict"]
        rows += new
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


# --------------------------------------------------------------------------------------- output
def _num(x: float, auc: bool = False) -> str:
    """A number for the printed table: 3 significant digits (AUC ratios: 4 decimals), inf as 'inf'."""
    if math.isinf(x):
        return "inf"
    return f"{x:.4f}" if auc else f"{x:.3g}"


def _interval_text(value: float, lo: float, hi: float, auc: bool = False) -> str:
    """'value [lo, hi]' ('(0, hi]', '[lo, inf)' where a bound leaves an edge open), '-' when nothing was measured."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    left = "(0" if lo == 0 else f"[{_num(lo, auc)}"
    return f"{_num(value, auc)} {left}, {_num(hi, auc)}{')' if math.isinf(hi) else ']'}"


def format_table(table: pd.DataFrame) -> str:
    """The claims table as aligned text, one line per claim."""
    head = ["id", "claim [source]", "test", "measured [68 %]", "seed", "verdict", "AUC ratio [68 %]", "note"]
    lines = [[r.id, f"{r.claim} [{r.source}]", r.comparison, _interval_text(r.measured, r.lo, r.hi),
              str(r.seed_value), r.verdict, _auc_text(r), "" if pd.isna(r.note) else str(r.note)]
             for r in table.itertuples()]
    widths = [max(len(x) for x in col) for col in zip(head, *lines)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    return "\n".join([fmt.format(*head), fmt.format(*("-" * w for w in widths))] +
                     [fmt.format(*line).rstrip() for line in lines])


def _auc_text(row) -> str:
    """The AUC cross-check of a row: 'ratio [lo, hi] verdict', '' when the claim has none."""
    if pd.isna(row.auc_verdict):
        return ""
    return f"{_interval_text(row.auc, row.auc_lo, row.auc_hi, auc=True)} {row.auc_verdict}".strip()


def run(args: argparse.Namespace) -> None:
    setup_logging()
    summary = load_summary(args.summary)
    if args.weighted:
        summary = use_weighted(summary)
    table = check_claims(summary, args.reference, mass_key(args.mass))
    print(format_table(table))
    if args.output:
        write_table(table, args.output)
    counts = table.drop_duplicates("id")["verdict"].value_counts().to_dict()
    log.info("%d rows: %s%s", len(table), counts, f" -> {args.output}" if args.output else "")
