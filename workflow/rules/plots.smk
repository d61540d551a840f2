# rules of the plots stage (see README "Stage: plots"): every figure of the study from the summary
# tables and the saved test scores (never a model), each wrapped in report() with its caption.


rule plots:
    input:
        summary=list(layout.SUMMARY_TABLES.values()),
        limits=layout.LIMITS_SUMMARY,
        represent=list(layout.REPRESENT_TABLES.values()),
        files=[path for pattern in layout.HEAD_FILES for path in head_runs(pattern)],
        jet_scores=[
            layout.task_path(layout.JET_SCORES, task) for task in pretrain_tasks()
        ],
    output:
        [
            report(
                path,
                caption=f"../report/{os.path.basename(path).rsplit('.', 1)[0]}.rst",
                category="Figures",
                subcategory=path.rsplit(".", 1)[1].upper(),
            )
            for path in plot_targets()
        ],
    log:
        "logs/plots/plots.log",
    benchmark:
        "logs/benchmark/plots/plots.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        config=stage_config("plots", "evaluate", "represent"),
        runs=head_runs(),
        jet_scores=jet_score_args(),
        default_backbone=head_task(),
        summary=lambda wildcards, input: os.path.dirname(input.summary[0]),
        outdir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m hhfm.cli plots --config '{params.config}' --summary {params.summary} --runs {params.runs} "
        "--jet-scores {params.jet_scores} --default-backbone {params.default_backbone}"
        " --outdir {params.outdir} > {log} 2>&1"
