from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.report import findings

with rule_context(snakemake):  # noqa: F821 (snakemake is injected)
    out = snakemake.output  # noqa: F821
    findings(Path(out.md).parent, out.md, out.html, list(snakemake.input.plots))  # noqa: F821
