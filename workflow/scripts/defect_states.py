from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps import defect_states

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    bulk_dir = Path(snakemake.input.bulk).parent  # noqa: F821
    defect_dir = Path(snakemake.input.defect).parent  # noqa: F821
    defect_states(config, bulk_dir, defect_dir, snakemake.output[0])  # noqa: F821
