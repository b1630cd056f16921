from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.hosts import prepare_host

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    prepare_host(snakemake.output[0].rsplit("/", 1)[0], **params)  # noqa: F821
