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


rule defect_states:
    input:
        bulk="results/{study}/{host}/bulk/record.json",
        defect="results/{study}/{host}/defects/{defect}_q{charge}/record.json",
    output:
        "results/{study}/{host}/defects/{defect}_q{charge}/defect_states.json",
    log:
        "logs/{study}/{host}/defects/{defect}_q{charge}/defect_states.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        trap_levels=CONFIG["trap_levels"],
        site_radius=CONFIG["site_radius"],
    script:
        "../scripts/defect_states.py"


rule tables:
    input:
        bulk=f"{RESULTS}/{HOST}/bulk/record.json",
        chempots=f"{RESULTS}/{HOST}/chemical_potentials.json",
        records=[f"{d}/record.json" for d in DEFECT_DIRS],
        corrections=[f"{d}/correction.json" for d in DEFECT_DIRS],
        states=[f"{d}/defect_states.json" for d in DEFECT_DIRS],
    output:
        formation_csv=report(
            f"{RESULTS}/tables/formation_energies.csv",
            caption="../report/formation_energies.rst",
            category="Tables",
        ),
        formation_md=f"{RESULTS}/tables/formation_energies.md",
        levels_csv=report(
            f"{RESULTS}/tables/transition_levels.csv",
            caption="../report/transition_levels.rst",
            category="Tables",
        ),
        levels_md=f"{RESULTS}/tables/transition_levels.md",
        fermi_csv=report(
            f"{RESULTS}/tables/fermi_level.csv",
            caption="../report/fermi_level.rst",
            category="Tables",
        ),
        fermi_md=f"{RESULTS}/tables/fermi_level.md",
        conc_csv=report(
            f"{RESULTS}/tables/concentrations.csv",
            caption="../report/concentrations.rst",
            category="Tables",
        ),
        conc_md=f"{RESULTS}/tables/concentrations.md",
        levels_json=f"{RESULTS}/tables/levels.json",
        provenance=f"{RESULTS}/tables/provenance.json",
    log:
        f"logs/{STUDY}/tables.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        defect_dirs=DEFECT_DIRS,
        band_edges=CONFIG["band_edges"],
        trap_levels=CONFIG["trap_levels"],
        concentrations=CONFIG["concentrations"],
        dielectric=CONFIG["dielectric"],
    script:
        "../scripts/tables.py"
