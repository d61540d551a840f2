# rules of the evaluate stage (see README "Stage: evaluate"): metrics of each head run from its saved
# test scores (`evaluate_run`), merged into the summary tables (`summarise`); target `evaluate`.
# SUMMARY_TABLES and pretrain_jet_scores() are in evaluate_helpers.smk.


rule evaluate_run:
    input:
        scores="results/heads/{model}/f{fraction}_s{seed}/scores.parquet",
        run="results/heads/{model}/f{fraction}_s{seed}/run.json",
    output:
        "results/evaluate/{model}/f{fraction}_s{seed}.csv",
    log:
        "logs/evaluate_run/{model}/f{fraction}_s{seed}.log",
    benchmark:
        "logs/benchmark/evaluate_run/{model}/f{fraction}_s{seed}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        json=stage_params("evaluate"),
    shell:
        "hhfm evaluate --params '{params.json}' --scores {input.scores} --run {input.run} "
        "--output {output} > {log} 2>&1"


rule summarise:
    input:
        runs=expand("results/evaluate/{run}.csv", run=head_runs()),
        jet_scores=pretrain_jet_scores(),
    output:
        SUMMARY_TABLES,
    log:
        "logs/summarise/summarise.log",
    benchmark:
        "logs/benchmark/summarise/summarise.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        json=stage_params("evaluate"),
    shell:
        "hhfm summarise --params '{params.json}' --inputs {input.runs} "
        "--jet-scores {input.jet_scores} --outdir results/summary > {log} 2>&1"


rule evaluate:
    input:
        SUMMARY_TABLES,
