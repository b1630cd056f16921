# Figures: formation-energy diagrams per composition and chemical-potential limit, and
# the trap-level chart across compositions; registered for `snakemake --report`.

# The limits are named after each host's (majority) halide (chempots.py): "<X>-rich" and
# "<X>-poor"; one diagram per host and limit.
PLOTS = [
    f"{RESULTS}/plots/formation_energy_{host}_{plan.composition.majority_halide}-{side}.{ext}"
    for host, plan in HOST_PLANS.items()
    for side in ("rich", "poor")
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
