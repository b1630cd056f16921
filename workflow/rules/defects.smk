# Defect supercells, one folder per defect and charge state.


rule defect_inputs:
    input:
        host="results/{study}/{host}/unitcell/record.json",
    output:
        "results/{study}/{host}/defects/{defect}_q{charge}/calc.json",
    params:
        supercell=CONFIG["host"]["supercell"],
        settings=ENGINE_SETTINGS,
    log:
        "logs/{study}/{host}/defects/{defect}_q{charge}/inputs.log",
    script:
        "../scripts/defect_inputs.py"
