# Defect studies of tin-lead halide perovskites: entry point.
# The rules live in workflow/rules/ by stage; the science lives in the perovskite_defects
# package (workflow/perovskite_defects), which every rule calls through a thin script.

from snakemake.utils import min_version

min_version("9.20")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/hosts.smk"
include: "workflow/rules/phases.smk"
include: "workflow/rules/defects.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/calculations.smk"
include: "workflow/rules/spin_orbit.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/report.smk"


# Rules that only read small result files and take seconds run where Snakemake runs, never
# through a cluster queue, where each would wait for a slot (on the SLURM test: ~25 s of
# submission and polling per job, five of them in a row after the last DFT job).
localrules:
    all,
    chemical_potentials,
    tables,
    aggregate_tables,
    plots,
    findings,


rule all:
    default_target: True
    input:
        TABLES,
        f"{RESULTS}/tables/provenance.json",
        PLOTS,
        FINDINGS,
