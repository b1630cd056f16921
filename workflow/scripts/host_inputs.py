from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.hosts import prepare_host

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    out = snakemake.output[0].rsplit("/", 1)[0]  # noqa: F821
    prepare_host(config, snakemake.wildcards.host, out)  # noqa: F821
