from perovskite_defects.scripting import rule_context
from perovskite_defects.steps import prepare_host

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    prepare_host(config, snakemake.output[0].rsplit("/", 1)[0])  # noqa: F821
