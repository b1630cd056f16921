from pathlib import Path

from perovskite_defects.hosts.dielectric_run import effective_dielectric
from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.analysis import defect_analysis

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    # dielectric.source computed: the host's computed tensors replace the cited value
    computed = list(snakemake.input.get("dielectric", []))  # noqa: F821
    config["dielectric"] = effective_dielectric(
        config["dielectric"],
        computed[0] if computed else None,
        snakemake.wildcards.host,  # noqa: F821
    )
    bulk_dir = Path(snakemake.input.bulk).parent  # noqa: F821
    defect_dir = Path(snakemake.input.defect).parent  # noqa: F821
    out = snakemake.output  # noqa: F821
    defect_analysis(config, bulk_dir, defect_dir, out.correction, out.states, out.local_environment)
