from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.search import search_candidates

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    search_candidates(
        Path(snakemake.input.manifest).parent,  # noqa: F821
        snakemake.wildcards.defect,  # noqa: F821
        list(snakemake.input.trials),  # noqa: F821
        snakemake.output[0],  # noqa: F821
        **params,
    )
