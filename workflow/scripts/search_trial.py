from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.search import prepare_trial

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    prepare_trial(
        Path(snakemake.input.manifest).parent,  # noqa: F821
        Path(snakemake.input.bulk).parent,  # noqa: F821
        snakemake.wildcards.defect,  # noqa: F821
        int(snakemake.wildcards.charge),  # noqa: F821
        snakemake.wildcards.label,  # noqa: F821
        Path(snakemake.output[0]).parent,  # noqa: F821
        **params,
    )
