# rules of the evaluate stage (see README "Stage: evaluate"): metrics of each head run from its saved
# test scores (`evaluate_run`), merged into the summary tables (`summarise`); target `evaluate`.


rule evaluate_run:
    input:
        scores=layout.HEAD_SCORES,
        run=layout.HEAD_RUN_JSON,
    output:
        layout.EVALUATE_TABLE,
    log:
        "logs/evaluate_run/{model}/f{fraction}_s{seed}.log",
    benchmark:
        "logs/benchmark/evaluate_run/{model}/f{fraction}_s{seed}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        config=stage_config("evaluate"),
    shell:
        "python -m hhfm.cli evaluate --config '{params.config}' --scores {input.scores} --run {input.run} "
        "--output {output} > {log} 2>&1"


rule summarise:
    input:
        runs=head_runs(layout.EVALUATE_TABLE),
        run_json=head_runs(layout.HEAD_RUN_JSON),
        jet_scores=[
            layout.task_path(layout.JET_SCORES, task) for task in pretrain_tasks()
        ],
    output:
        list(layout.SUMMARY_TABLES.values()),
    log:
        "logs/summarise/summarise.log",
    benchmark:
        "logs/benchmark/summarise/summarise.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config=stage_config("evaluate"),
        jet_scores=jet_score_args(),
        outdir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m hhfm.cli summarise --config '{params.config}' --inputs {input.runs} "
        "--jet-scores {params.jet_scores} --runs {input.run_json} --outdir {params.outdir} > {log} 2>&1"


# the seed documents' claims checked against the summary (README "hhfm claims"); in `rule all`
rule claims:
    input:
        aggregated=layout.SUMMARY_TABLES["aggregated.csv"],
        efficiency=layout.SUMMARY_TABLES["data_efficiency.csv"],
        limits=layout.LIMITS_SUMMARY,
    output:
        unweighted=layout.CLAIMS_TABLE,
        weighted=layout.CLAIMS_WEIGHTED_TABLE,
    log:
        "logs/claims/claims.log",
    benchmark:
        "logs/benchmark/claims/claims.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        reference=config["evaluate"]["reference_model"],
        summary=lambda wildcards, input: os.path.dirname(input.aggregated),
    shell:
        "(python -m hhfm.cli claims --summary {params.summary} --reference {params.reference} "
        "--output {output.unweighted} && python -m hhfm.cli claims --summary {params.summary} "
        "--reference {params.reference} --weighted --output {output.weighted}) > {log} 2>&1"


rule evaluate:
    input:
        list(layout.SUMMARY_TABLES.values()),
