from pathlib import Path

from perovskite_defects.reporting.plots import study_plots
from perovskite_defects.scripting import rule_context

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    out_dir = Path(snakemake.output.traps[0]).parent  # noqa: F821
    study_plots(list(snakemake.input.levels), out_dir, **params)  # noqa: F821
