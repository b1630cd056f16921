from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.calculations import run_calculation

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    launcher = snakemake.resources.get("mpi", None)  # noqa: F821
    # srun starts the allocation's tasks; a local launcher gets the job's threads.
    ranks = snakemake.resources.tasks if launcher == "srun" else snakemake.threads  # noqa: F821
    run_calculation(config, snakemake.input[0].rsplit("/", 1)[0], ranks, mpi_launcher=launcher)  # noqa: F821
