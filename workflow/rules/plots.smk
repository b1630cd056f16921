# Figures: formation-energy diagrams per composition and chemical-potential limit, and
# the trap-level chart across compositions; registered for `snakemake --report`.

# The limits are named after the halide (chempots.py): "<X>-rich" and "<X>-poor".
LIMIT_NAMES = [f"{CONFIG['host']['X']}-rich", f"{CONFIG['host']['X']}-poor"]
PLOTS = [
    f"{RESULTS}/plots/formation_energy_{HOST}_{limit}.{ext}"
    for limit in LIMIT_NAMES
    for ext in ("png", "svg")
] + [f"{RESULTS}/plots/trap_levels.{ext}" for ext in ("png", "svg")]


rule plots:
    input:
        levels=f"{RESULTS}/tables/levels.json",
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
