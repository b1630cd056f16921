from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.tables import aggregate_tables

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    out_dir = Path(snakemake.output.provenance).parent  # noqa: F821
    aggregate_tables(config, snakemake.params.hosts, out_dir.parent, out_dir)  # noqa: F821
