from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.hosts import check_host_stability

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    out = snakemake.output[0].rsplit("/", 1)[0]  # noqa: F821
    check_host_stability(snakemake.input.host, out, **params)  # noqa: F821
