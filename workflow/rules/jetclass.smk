# rules of the jetclass stage (see README "Stage: jetclass"): the JetClass-format jets the `jetclass`
# backbone trains on. `simulate_jetclass` writes the built-in JetClass-like sample (one file per class
# and index, named as a JetClass download names them); `skim_jetclass` reads those files, or a real
# JetClass download (jetclass.source files), into the jet-level dataset results/jetclass/dataset.h5.


rule simulate_jetclass:
    output:
        layout.JETCLASS_SIMULATION,
    log:
        "logs/simulate_jetclass/{jetclass_file}.log",
    benchmark:
        "logs/benchmark/simulate_jetclass/{jetclass_file}.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        cls=jetclass_file_class,
        index=lambda wildcards: wildcards.jetclass_file.rsplit("_", 1)[1],
        n_jets=config["jetclass"]["jets_per_file"],
        seed=config["seed"],
        max_particles=config["jetclass"]["max_particles"],
    shell:
        "python -m hhfm.cli simulate-jetclass --class {params.cls} --index {params.index}"
        " --n-jets {params.n_jets} --seed {params.seed} --max-particles {params.max_particles}"
        " --output {output} --no-progress > {log} 2>&1"


rule skim_jetclass:
    input:
        jetclass_inputs,
    output:
        layout.JETCLASS_DATASET,
    log:
        "logs/skim_jetclass/skim_jetclass.log",
    benchmark:
        "logs/benchmark/skim_jetclass/skim_jetclass.tsv"
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        max_particles=config["jetclass"]["max_particles"],
        max_jets=config["jetclass"]["max_jets_per_file"],
        fractions=json.dumps(config["jetclass"]["split_fractions"], sort_keys=True),
        nan_policy=config["jetclass"]["nan_policy"],
        seed=config["seed"],
    shell:
        "python -m hhfm.cli skim-jetclass --input {input} --output {output}"
        " --max-particles {params.max_particles} --max-jets-per-file {params.max_jets}"
        " --split-fractions '{params.fractions}' --nan-policy {params.nan_policy}"
        " --seed {params.seed} > {log} 2>&1"
