from pathlib import Path

from perovskite_defects.hosts.dielectric_run import effective_dielectric
from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.tables import tables

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    # dielectric.source computed: the host's computed tensors replace the cited value
    computed = list(snakemake.input.get("dielectric", []))  # noqa: F821
    config["dielectric"] = effective_dielectric(
        config["dielectric"],
        computed[0] if computed else None,
        snakemake.wildcards.host,  # noqa: F821
    )
    out_dir = Path(snakemake.output.provenance).parent  # noqa: F821
    tables(
        config,
        snakemake.input.bulk,  # noqa: F821
        snakemake.input.chempots,  # noqa: F821
        snakemake.params.defect_dirs,  # noqa: F821
        out_dir,
        host=snakemake.wildcards.host,  # noqa: F821
        soc_shifts=getattr(snakemake.input, "soc", None),  # noqa: F821 (band_edges.soc)
    )
