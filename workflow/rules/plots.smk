# rules of the plots stage (see README "Stage: plots"): every figure of the study from the summary
# tables and the saved test scores (never a model), each wrapped in report() with its caption.
# plot_targets(), head_run_files() and FIGURES/FORMATS (hhfm.plots) are in plots_helpers.smk.


rule plots:
    input:
        summary=SUMMARY_TABLES,
        limits="results/summary/limits.csv",
        scores=head_run_files("scores.parquet"),
        runs=head_run_files("run.json"),
        histories=head_run_files("metrics.csv"),
        jet_scores=pretrain_jet_scores(),
    output:
        [
            report(
                f"results/plots/{name}.{ext}",
                caption=f"../report/{name}.rst",
                category="Figures",
                subcategory=ext.upper(),
            )
            for name in FIGURES
            for ext in FORMATS
        ],
    log:
        "logs/plots/plots.log",
    benchmark:
        "logs/benchmark/plots/plots.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        json=stage_params("plots"),
        runs=expand("results/heads/{run}", run=head_runs()),
    shell:
        "hhfm plots --params '{params.json}' --summary results/summary --runs {params.runs} "
        "--jet-scores {input.jet_scores} --outdir results/plots > {log} 2>&1"
