# Figures: formation-energy diagrams per composition and chemical-potential limit, and
# the trap-level chart across compositions; registered for `snakemake --report`.

# One diagram per host and chemical-potential limit: "<X>-rich" and "<X>-poor" of the
# computed limits (chempots.py), or the names of the limits given in config.
PLOTS = [
    f"{RESULTS}/plots/formation_energy_{host}_{limit}.{ext}"
    for host, plan in HOST_PLANS.items()
    for limit in pd_limit_names(CONFIG, plan)
    for ext in ("png", "svg")
] + [f"{RESULTS}/plots/trap_levels.{ext}" for ext in ("png", "svg")]


rule plots:
    input:
        levels=expand(
            "{results}/{host}/tables/levels.json", results=RESULTS, host=HOSTS
        ),
    output:
        diagrams=[
            report(
                path,
                caption="../report/formation_energy_diagram.rst",
                category="Formation energies",
            )
            for path in PLOTS[:-2]
        ],
        traps=[
            report(path, caption="../report/trap_levels.rst", category="Trap levels")
            for path in PLOTS[-2:]
        ],
    log:
        f"logs/{STUDY}/plots.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    script:
        "../scripts/plots.py"
