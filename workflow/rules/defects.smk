# Defect supercells, one folder per defect and charge state.


rule defect_inputs:
    input:
        host="results/{study}/{host}/unitcell/record.json",
    output:
        "results/{study}/{host}/defects/{defect}_q{charge}/calc.json",
    log:
        "logs/{study}/{host}/defects/{defect}_q{charge}/inputs.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        supercell=CONFIG["host"]["supercell"],
        settings=ENGINE_SETTINGS,
    script:
        "../scripts/defect_inputs.py"
