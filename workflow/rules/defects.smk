# The defect manifest of each host (a checkpoint: its defects, site classes, multiplicities
# and charges decide the jobs downstream) and one folder per defect and charge state.


checkpoint defect_manifest:
    input:
        host="results/{study}/{host}/structures/host.json",
    output:
        tsv="results/{study}/{host}/defects/manifest.tsv",
        json="results/{study}/{host}/defects/manifest.json",
    log:
        "logs/{study}/{host}/defects/manifest.log",
    wildcard_constraints:
        host=HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **pd_params.defect_manifest_params(CONFIG),
    script:
        "../scripts/defect_manifest.py"


rule defect_inputs:
    input:
        manifest="results/{study}/{host}/defects/manifest.tsv",
        bulk="results/{study}/{host}/bulk/calc.json",
    output:
        "results/{study}/{host}/defects/{defect}_q{charge}/calc.json",
    log:
        "logs/{study}/{host}/defects/{defect}_q{charge}/inputs.log",
    wildcard_constraints:
        host=HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **pd_params.defect_inputs_params(CONFIG),
    script:
        "../scripts/defect_inputs.py"
