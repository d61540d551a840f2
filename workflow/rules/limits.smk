# rules of the limits stage (see README "Stage: limits"): pyhf expected limits per head run and
# signal mass (`limits_run`), merged into the summary's limits.csv (target `limits`).


rule limits_run:
    input:
        scores=layout.HEAD_SCORES,
        val_scores=layout.HEAD_VAL_SCORES,
        run=layout.HEAD_RUN_JSON,
    output:
        table=layout.LIMITS_TABLE,
        workspaces=directory(layout.LIMITS_WORKSPACES),
    log:
        "logs/limits_run/{model}/f{fraction}_s{seed}.log",
    benchmark:
        "logs/benchmark/limits_run/{model}/f{fraction}_s{seed}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        config=stage_config("limits"),
    shell:
        "python -m hhfm.cli limits --config '{params.config}' --scores {input.scores} "
        "--val-scores {input.val_scores} --run {input.run} "
        "--outdir {output.workspaces} --table {output.table} > {log} 2>&1"


rule limits:
    input:
        limit_runs(layout.LIMITS_TABLE),
    output:
        layout.LIMITS_SUMMARY,
    log:
        "logs/limits/merge.log",
    benchmark:
        "logs/benchmark/limits/merge.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m hhfm.cli merge-limits --inputs {input} --output {output} > {log} 2>&1"
