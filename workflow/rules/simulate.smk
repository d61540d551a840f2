# rules of the simulate stage (see README "Stage: simulate"): one `simulate` job per output file
# (Pythia 8 + FastJet + parametric detector -> record-format ROOT file + JSON sidecar), and the
# target `simulation` that makes every file listed by simulated_files() (common.smk).
# simulate_runtime() is in simulate_helpers.smk.


rule simulate:
    output:
        root="results/simulation/{sample}/ntuple_{index}.root",
        sidecar="results/simulation/{sample}/ntuple_{index}.json",
    log:
        "logs/simulate/{sample}_{index}.log",
    benchmark:
        "logs/benchmark/simulate/{sample}_{index}.tsv"
    wildcard_constraints:
        sample=r"GravitonHH_M\d+|QCD_Pt_\d+to(\d+|Inf)",
        index=r"\d+",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=simulate_runtime,
    params:
        simulate=lambda wildcards: stage_params("simulate"),
    shell:
        "hhfm simulate --params '{params.simulate}' --sample {wildcards.sample} "
        "--index {wildcards.index} --output {output.root} > {log} 2>&1"


rule simulation:
    input:
        simulated_files(),
