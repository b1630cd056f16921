# Host unit cell (relaxed by the engine) and the pristine supercell.


rule host_inputs:
    output:
        "results/{study}/{host}/unitcell/calc.json",
    log:
        "logs/{study}/{host}/unitcell/inputs.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        host=CONFIG["host"],
        settings=ENGINE_SETTINGS,
    script:
        "../scripts/host_inputs.py"


rule bulk_inputs:
    input:
        host="results/{study}/{host}/unitcell/record.json",
    output:
        "results/{study}/{host}/bulk/calc.json",
    log:
        "logs/{study}/{host}/bulk/inputs.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        supercell=CONFIG["host"]["supercell"],
        settings=ENGINE_SETTINGS,
    script:
        "../scripts/bulk_inputs.py"
