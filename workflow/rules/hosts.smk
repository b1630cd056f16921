# Host structures (pure Python), end-member unit cells (relaxed by the engine) and the
# pristine supercell of every host at the Vegard lattice constant, or (lattice_mode relax)
# the host supercell relaxed itself.


rule host_structure:
    output:
        json="results/{study}/{host}/structures/host.json",
        poscar="results/{study}/{host}/structures/host.vasp",
        cif="results/{study}/{host}/structures/host.cif",
    log:
        "logs/{study}/{host}/host_structure.log",
    wildcard_constraints:
        host=HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **host_params(pd_params.host_structure_params),
    script:
        "../scripts/host_structure.py"


rule host_inputs:
    output:
        "results/{study}/{host}/unitcell/calc.json",
    log:
        "logs/{study}/{host}/unitcell/inputs.log",
    wildcard_constraints:
        host=END_MEMBER_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **host_params(pd_params.host_inputs_params, END_MEMBERS),
    script:
        "../scripts/host_inputs.py"


# lattice_mode relax: the host supercell itself relaxes, cell and positions (run by
# run_calculation in results/<study>/<host>/relax/); its final structure is the bulk.
rule supercell_relax_inputs:
    input:
        host="results/{study}/{host}/structures/host.json",
    output:
        "results/{study}/{host}/relax/calc.json",
    log:
        "logs/{study}/{host}/relax/inputs.log",
    wildcard_constraints:
        host=RELAXED_HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **pd_params.supercell_relax_inputs_params(CONFIG),
    script:
        "../scripts/supercell_relax_inputs.py"


# host.stability.check: the host supercell relaxed from a rattled start, checked by its
# Gamma phonons (phonopy, engine forces) and displaced along imaginary modes until none
# remains; every sub-calculation has its own folder under stability/ and is reused after
# a kill. Its final structure is the bulk.
rule host_stability:
    input:
        host="results/{study}/{host}/structures/host.json",
    output:
        "results/{study}/{host}/stability/stability.json",
    log:
        "logs/{study}/{host}/stability.log",
    wildcard_constraints:
        host=STABLE_HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    threads: dft_threads()
    resources:
        mem_mb=lambda wildcards, threads, attempt: dft_mem_mb(threads, attempt),
        runtime=lambda wildcards, attempt: 4 * dft_runtime_min(attempt),
        tasks=dft_threads(),
        cpus_per_task=1,
        mpi=dft_mpi_launcher,
    params:
        **host_params(pd_params.host_stability_params),
        **dft_run_params(),
    script:
        "../scripts/host_stability.py"


rule bulk_inputs:
    input:
        unpack(bulk_input_files),
    output:
        "results/{study}/{host}/bulk/calc.json",
    log:
        "logs/{study}/{host}/bulk/inputs.log",
    wildcard_constraints:
        host=HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        **host_params(pd_params.bulk_inputs_params),
    script:
        "../scripts/bulk_inputs.py"


# dielectric: {source: computed}: electronic + ionic tensors of the relaxed unit cell
# (CP2K finite Berry-phase field in a Gamma-only supercell; phonopy Gamma phonons of the
# unit cell with the engine's k-mesh).
rule host_dielectric:
    input:
        "results/{study}/{host}/unitcell/record.json",
    output:
        "results/{study}/{host}/dielectric/dielectric.json",
    log:
        "logs/{study}/{host}/dielectric.log",
    wildcard_constraints:
        host=END_MEMBER_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    threads: dft_threads()
    resources:
        mem_mb=lambda wildcards, threads, attempt: dft_mem_mb(threads, attempt),
        runtime=lambda wildcards, attempt: dft_runtime_min(attempt),
        tasks=dft_threads(),
        cpus_per_task=1,
        mpi=dft_mpi_launcher,
    params:
        **pd_params.host_dielectric_params(CONFIG),
        **dft_run_params(),
    script:
        "../scripts/host_dielectric.py"
