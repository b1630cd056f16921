from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.spin_orbit import compute_shifts

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    compute_shifts(
        snakemake.input.structure,  # noqa: F821
        Path(snakemake.output.shifts).parent,  # noqa: F821
        **params,
    )
