from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.hosts import build_host_files

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    build_host_files(snakemake.output.json.rsplit("/", 1)[0], **params)  # noqa: F821
