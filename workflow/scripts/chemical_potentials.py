from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.phases import chemical_potentials

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    phases = {Path(p).parent.name: p for p in snakemake.input.phases}  # noqa: F821
    chemical_potentials(
        snakemake.wildcards.host,  # noqa: F821
        snakemake.input.host,  # noqa: F821
        phases,
        snakemake.output[0],  # noqa: F821
        **params,
    )
