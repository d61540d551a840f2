# rules of the limits stage (see README "Stage: limits"): pyhf expected limits per head run and
# signal mass (`limits_run`), merged into results/summary/limits.csv (target `limits`).


rule limits_run:
    input:
        scores="results/heads/{model}/f{fraction}_s{seed}/scores.parquet",
        run="results/heads/{model}/f{fraction}_s{seed}/run.json",
    output:
        table="results/limits/{model}/f{fraction}_s{seed}.csv",
        workspaces=directory("results/limits/{model}/f{fraction}_s{seed}"),
    log:
        "logs/limits_run/{model}/f{fraction}_s{seed}.log",
    benchmark:
        "logs/benchmark/limits_run/{model}/f{fraction}_s{seed}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        json=stage_params("limits"),
    shell:
        "hhfm limits --params '{params.json}' --scores {input.scores} --run {input.run} "
        "--outdir {output.workspaces} --table {output.table} > {log} 2>&1"


rule limits:
    input:
        expand("results/limits/{run}.csv", run=head_runs()),
    output:
        "results/summary/limits.csv",
    log:
        "logs/limits/merge.log",
    benchmark:
        "logs/benchmark/limits/merge.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "hhfm merge-limits --inputs {input} --output {output} > {log} 2>&1"
