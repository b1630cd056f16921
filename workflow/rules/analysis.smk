# Finite-size corrections, defect states, formation energies and transition levels.


# One job per defect and charge state for both analyses of its converged run (the
# finite-size correction and the character of its gap states): they read the same bulk
# and defect records and potentials, and in a sweep a job less per charge state keeps the
# dry run of ~8000 jobs fast (Snakemake's bookkeeping costs ~2 ms per job).
rule defect_analysis:
    input:
        bulk="results/{study}/{host}/bulk/record.json",
        defect="results/{study}/{host}/defects/{defect}_q{charge}/record.json",
        dielectric=dielectric_input,
    output:
        correction="results/{study}/{host}/defects/{defect}_q{charge}/correction.json",
        states="results/{study}/{host}/defects/{defect}_q{charge}/defect_states.json",
        local_environment="results/{study}/{host}/defects/{defect}_q{charge}/local_environment.json",
    log:
        "logs/{study}/{host}/defects/{defect}_q{charge}/analysis.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **pd_params.defect_analysis_params(CONFIG),
    script:
        "../scripts/defect_analysis.py"


rule tables:
    input:
        unpack(defect_table_inputs),
        unpack(soc_table_inputs),
        bulk="results/{study}/{host}/bulk/record.json",
        chempots="results/{study}/{host}/chemical_potentials.json",
        dielectric=dielectric_input,
    output:
        expand(
            "results/{{study}}/{{host}}/tables/{name}.{ext}",
            name=HOST_TABLE_NAMES + SOC_TABLE_NAMES,
            ext=("csv", "md"),
        ),
        local_environment=report(
            "results/{study}/{host}/tables/local_environment.csv",
            caption="../report/local_environment.rst",
            category="Local environment",
            subcategory="{host}",
        ),
        local_environment_md="results/{study}/{host}/tables/local_environment.md",
        levels_json="results/{study}/{host}/tables/levels.json",
        host_results="results/{study}/{host}/tables/host_results.json",
        provenance="results/{study}/{host}/tables/provenance.json",
    log:
        "logs/{study}/{host}/tables.log",
    wildcard_constraints:
        host=HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **pd_params.tables_params(CONFIG),
    script:
        "../scripts/tables.py"


rule aggregate_tables:
    input:
        expand(
            "results/{{study}}/{host}/tables/{name}.json",
            host=HOSTS,
            name=("host_results", "provenance"),
        ),
        expand("results/{{study}}/{host}/structures/host.json", host=HOSTS),
    output:
        formation_csv=report(
            "results/{study}/tables/formation_energies.csv",
            caption="../report/formation_energies.rst",
            category="Tables",
        ),
        levels_csv=report(
            "results/{study}/tables/transition_levels.csv",
            caption="../report/transition_levels.rst",
            category="Tables",
        ),
        fermi_csv=report(
            "results/{study}/tables/fermi_level.csv",
            caption="../report/fermi_level.rst",
            category="Tables",
        ),
        conc_csv=report(
            "results/{study}/tables/concentrations.csv",
            caption="../report/concentrations.rst",
            category="Tables",
        ),
        dopant_csv=report(
            "results/{study}/tables/dopant_effect.csv",
            caption="../report/dopant_effect.rst",
            category="Tables",
        ),
        other=expand(
            "results/{{study}}/tables/{name}",
            name=[
                "formation_energies.md",
                "transition_levels.md",
                "fermi_level.md",
                "concentrations.md",
                "dopant_effect.md",
                "class_averages.csv",
                "class_averages.md",
                "class_transition_levels.csv",
                "class_transition_levels.md",
            ],
        ),
        provenance="results/{study}/tables/provenance.json",
    log:
        "logs/{study}/aggregate_tables.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **pd_params.aggregate_tables_params(CONFIG, HOSTS),
    script:
        "../scripts/aggregate_tables.py"
