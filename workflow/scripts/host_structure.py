from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.hosts import build_host_files

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    out = snakemake.output.json.rsplit("/", 1)[0]  # noqa: F821
    build_host_files(config, snakemake.wildcards.host, out)  # noqa: F821
