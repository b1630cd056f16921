# Spin-orbit shifts of the band edges (config band_edges.soc: gpaw): the host cell computed
# with GPAW without and with spin-orbit coupling; the tables add the shifts to the edges.
# Included before analysis.smk, whose tables rule uses SOC_TABLE_NAMES and
# soc_table_inputs.

SOC_ENGINE = CONFIG["band_edges"]["soc"]
SOC_TABLE_NAMES = ("spin_orbit_levels",) if SOC_ENGINE != "none" else ()


def soc_structure_record(wildcards):
    """The host's relaxed unit cell when it has one (end members: 5 atoms for ABX3),
    otherwise its bulk supercell (alloys, lattice_mode relax)."""
    folder = f"results/{wildcards.study}/{wildcards.host}"
    if wildcards.host in END_MEMBERS:
        return f"{folder}/unitcell/record.json"
    return f"{folder}/bulk/record.json"


def soc_table_inputs(wildcards):
    """The shifts file of a host for its tables, or nothing without band_edges.soc."""
    if SOC_ENGINE == "none":
        return {}
    return {"soc": f"results/{wildcards.study}/{wildcards.host}/spin_orbit/soc_shifts.json"}


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
    threads: 1
    conda:
        "../../envs/perovskite-defects.yaml"
    params:
        band_edges=CONFIG["band_edges"],
        gpaw=CONFIG["gpaw"],
    script:
        "../scripts/spin_orbit_shifts.py"
