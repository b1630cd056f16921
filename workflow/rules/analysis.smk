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
        bulk=f"{RESULTS}/{HOST}/bulk/record.json",
        chempots=f"{RESULTS}/{HOST}/chemical_potentials.json",
        records=[f"{d}/record.json" for d in DEFECT_DIRS],
        corrections=[f"{d}/correction.json" for d in DEFECT_DIRS],
    output:
        TABLES,
        provenance=f"{RESULTS}/tables/provenance.json",
    log:
        f"logs/{STUDY}/tables.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        defect_dirs=DEFECT_DIRS,
    script:
        "../scripts/tables.py"
