from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.spin_orbit import compute_shifts

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    compute_shifts(
        config,
        snakemake.input.structure,  # noqa: F821
        Path(snakemake.output.shifts).parent,  # noqa: F821
    )
