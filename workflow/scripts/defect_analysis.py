from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.analysis import defect_analysis

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    computed = list(snakemake.input.get("dielectric", []))  # noqa: F821 (dielectric computed)
    out = snakemake.output  # noqa: F821
    defect_analysis(
        Path(snakemake.input.bulk).parent,  # noqa: F821
        Path(snakemake.input.defect).parent,  # noqa: F821
        out.correction,
        out.states,
        out.local_environment,
        computed[0] if computed else None,
        snakemake.wildcards.host,  # noqa: F821
        **params,
    )
