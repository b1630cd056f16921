# Competing phases and the chemical-potential limits they set.


rule phase_inputs:
    input:
        structure=f"{workflow.basedir}/structures/phases/{{phase}}.cif",
    output:
        "results/{study}/phases/{phase}/calc.json",
    params:
        settings=ENGINE_SETTINGS,
    log:
        "logs/{study}/phases/{phase}/inputs.log",
    script:
        "../scripts/phase_inputs.py"


rule chemical_potentials:
    input:
        host="results/{study}/{host}/unitcell/record.json",
        phases=expand("results/{{study}}/phases/{phase}/record.json", phase=PHASES),
    output:
        "results/{study}/{host}/chemical_potentials.json",
    log:
        "logs/{study}/{host}/chemical_potentials.log",
    script:
        "../scripts/chemical_potentials.py"
