# Helpers of the evaluate stage (rules in evaluate.smk; the plots use them too). Rule-free; included
# from the Snakefile before the rule files.

SUMMARY_TABLES = [
    "results/summary/metrics.csv",
    "results/summary/metrics.parquet",
    "results/summary/aggregated.csv",
    "results/summary/data_efficiency.csv",
    "results/summary/jet_metrics.csv",
]


def pretrain_jet_scores():
    return f"results/pretrain/{config['pretrain']['task']}/jet_scores.parquet"
