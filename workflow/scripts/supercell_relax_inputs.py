from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.hosts import prepare_supercell_relax

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    out = snakemake.output[0].rsplit("/", 1)[0]  # noqa: F821
    prepare_supercell_relax(snakemake.input.host, out, **params)  # noqa: F821
