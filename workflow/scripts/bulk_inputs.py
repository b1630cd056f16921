from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.hosts import prepare_bulk

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    records = {k: v for k, v in snakemake.input.items() if k != "host"}  # noqa: F821
    out = snakemake.output[0].rsplit("/", 1)[0]  # noqa: F821
    prepare_bulk(snakemake.input.host, records, out, **params)  # noqa: F821
