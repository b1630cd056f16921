from perovskite_defects.hosts.dielectric_run import host_dielectric_step
from perovskite_defects.scripting import rule_context

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    launcher = snakemake.resources.get("mpi", None)  # noqa: F821
    ranks = snakemake.resources.tasks if launcher == "srun" else snakemake.threads  # noqa: F821
    host_dielectric_step(
        config,
        snakemake.input[0],  # noqa: F821
        snakemake.output[0],  # noqa: F821
        nprocs=ranks,
        mpi_launcher=launcher,
    )
