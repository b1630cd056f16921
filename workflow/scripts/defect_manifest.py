from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.defects import write_manifest_files

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    out = snakemake.output.tsv.rsplit("/", 1)[0]  # noqa: F821
    write_manifest_files(snakemake.input.host, out, **params)  # noqa: F821
