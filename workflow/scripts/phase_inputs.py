from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.phases import prepare_phase

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    prepare_phase(
        snakemake.wildcards.phase,  # noqa: F821
        Path(snakemake.output[0]).parent,  # noqa: F821
        snakemake.input.structure,  # noqa: F821
        **params,
    )
