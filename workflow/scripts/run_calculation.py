from perovskite_defects.scripting import rule_context
from perovskite_defects.steps import run_calculation

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    run_calculation(config, snakemake.input[0].rsplit("/", 1)[0], snakemake.threads)  # noqa: F821
