from pathlib import Path

from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.tables import tables

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    computed = list(snakemake.input.get("dielectric", []))  # noqa: F821 (dielectric computed)
    # the host's defect folders, in manifest order: those of its records
    defect_dirs = [Path(r).parent for r in snakemake.input.get("records", [])]  # noqa: F821
    tables(
        snakemake.input.bulk,  # noqa: F821
        snakemake.input.chempots,  # noqa: F821
        defect_dirs,
        Path(snakemake.output.provenance).parent,  # noqa: F821
        snakemake.wildcards.host,  # noqa: F821
        getattr(snakemake.input, "soc", None),  # noqa: F821 (band_edges.soc)
        computed[0] if computed else None,
        **params,
    )
