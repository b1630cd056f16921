# Competing phases and the chemical-potential limits they set.


rule phase_inputs:
    input:
        structure=f"{workflow.basedir}/structures/phases/{{phase}}.cif",
    output:
        "results/{study}/phases/{phase}/calc.json",
    log:
        "logs/{study}/phases/{phase}/inputs.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **pd_params.phase_inputs_params(CONFIG),
    script:
        "../scripts/phase_inputs.py"


rule chemical_potentials:
    input:
        host=host_energy_record,
        phases=lambda wildcards: expand(
            "results/{study}/phases/{phase}/record.json",
            study=wildcards.study,
            phase=pd_steps_phases.host_phases(
                CONFIG, wildcards.host, HOST_PLANS[wildcards.host]
            ),
        ),
    output:
        "results/{study}/{host}/chemical_potentials.json",
    log:
        "logs/{study}/{host}/chemical_potentials.log",
    wildcard_constraints:
        host=HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **host_params(pd_params.chemical_potentials_params),
    script:
        "../scripts/chemical_potentials.py"
