# Spin-orbit shifts of the band edges (config band_edges.soc: gpaw): the host cell computed
# with GPAW without and with spin-orbit coupling; the tables add the shifts to the edges.
# Its input functions (soc_structure_record, soc_table_inputs) are in common.smk.


rule spin_orbit_shifts:
    input:
        structure=soc_structure_record,
    output:
        shifts="results/{study}/{host}/spin_orbit/soc_shifts.json",
        record="results/{study}/{host}/spin_orbit/record.json",
    log:
        "logs/{study}/{host}/spin_orbit.log",
    wildcard_constraints:
        host=HOST_RE,
    conda:
        "../../envs/perovskite-defects.yaml"
    threads: 1
    params:
        **pd_params.spin_orbit_shifts_params(CONFIG),
    script:
        "../scripts/spin_orbit_shifts.py"
