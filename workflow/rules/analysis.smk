# Finite-size corrections, formation energies and transition levels.


rule correction:
    input:
        bulk="results/{study}/{host}/bulk/record.json",
        defect="results/{study}/{host}/defects/{defect}_q{charge}/record.json",
    output:
        "results/{study}/{host}/defects/{defect}_q{charge}/correction.json",
    params:
        scheme=CONFIG["correction"],
        dielectric=CONFIG["dielectric"],
    log:
        "logs/{study}/{host}/defects/{defect}_q{charge}/correction.log",
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
    params:
        defect_dirs=DEFECT_DIRS,
    log:
        f"logs/{STUDY}/tables.log",
    script:
        "../scripts/tables.py"
