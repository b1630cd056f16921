from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.calculations import run_calculation

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    run_calculation(snakemake.input[0].rsplit("/", 1)[0], **params)  # noqa: F821
