# Finite-size corrections, formation energies and transition levels.


rule correction:
    input:
        bulk="results/{study}/{host}/bulk/record.json",
        defect="results/{study}/{host}/defects/{defect}_q{charge}/record.json",
    output:
        "results/{study}/{host}/defects/{defect}_q{charge}/correction.json",
    log:
        "logs/{study}/{host}/defects/{defect}_q{charge}/correction.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        scheme=CONFIG["correction"],
        site_radius=CONFIG["site_radius"],
        dielectric=CONFIG["dielectric"],
    script:
        "../scripts/correction.py"


rule tables:
    input:
        bulk="results/{study}/{host}/bulk/record.json",
        chempots="results/{study}/{host}/chemical_potentials.json",
        records=lambda wildcards: [f"{d}/record.json" for d in defect_dirs(wildcards)],
        corrections=lambda wildcards: [
            f"{d}/correction.json" for d in defect_dirs(wildcards)
        ],
    output:
        expand(
            "results/{{study}}/{{host}}/tables/{name}.{ext}",
            name=("formation_energies", "transition_levels"),
            ext=("csv", "md"),
        ),
        provenance="results/{study}/{host}/tables/provenance.json",
    log:
        "logs/{study}/{host}/tables.log",
    wildcard_constraints:
        host=HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        defect_dirs=defect_dirs,
    script:
        "../scripts/tables.py"


rule aggregate_tables:
    input:
        expand(
            "results/{{study}}/{host}/tables/provenance.json",
            host=HOSTS,
        ),
        expand("results/{{study}}/{host}/structures/host.json", host=HOSTS),
    output:
        expand(
            "results/{{study}}/tables/{name}.{ext}",
            name=(
                "formation_energies",
                "transition_levels",
                "class_averages",
                "class_transition_levels",
            ),
            ext=("csv", "md"),
        ),
        provenance="results/{study}/tables/provenance.json",
    log:
        "logs/{study}/aggregate_tables.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        hosts=HOSTS,
        temperature=CONFIG["aggregate"]["temperature"],
    script:
        "../scripts/aggregate_tables.py"
