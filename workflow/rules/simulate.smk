# rules of the simulate stage (see README "Stage: simulate"): one `simulate` job per output file
# (Pythia 8 + FastJet + parametric detector -> record-format ROOT file + JSON sidecar), and the
# target `simulation` that makes every file listed by simulated_files() (common.smk).


rule simulate:
    output:
        root=layout.SIMULATION_ROOT,
        sidecar=layout.SIMULATION_SIDECAR,
    log:
        "logs/simulate/{sample}_{index}.log",
    benchmark:
        "logs/benchmark/simulate/{sample}_{index}.tsv"
    wildcard_constraints:
        sample=sim_samples.SAMPLE_PATTERN,
        index=r"\d+",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=simulate_runtime,
    params:
        config=simulate_config,
    shell:
        "python -m hhfm.cli simulate --config '{params.config}' --sample {wildcards.sample} "
        "--index {wildcards.index} --output {output.root} > {log} 2>&1"


rule simulation:
    input:
        simulated_files(),
