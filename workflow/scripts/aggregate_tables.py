from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.tables import aggregate_tables

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    out_dir = Path(snakemake.output.provenance).parent  # noqa: F821
    aggregate_tables(out_dir.parent, out_dir, **params)
