from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.phases import prepare_phase

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    prepare_phase(
        config,
        snakemake.wildcards.phase,  # noqa: F821
        Path(snakemake.output[0]).parent,  # noqa: F821
        cif=snakemake.input.structure,  # noqa: F821
    )
