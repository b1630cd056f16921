from perovskite_defects.scripting import rule_context
from perovskite_defects.steps.hosts import check_host_stability

with rule_context(snakemake) as config:  # noqa: F821 (snakemake is injected)
    launcher = snakemake.resources.get("mpi", None)  # noqa: F821
    # srun starts the allocation's tasks; a local launcher gets the job's threads.
    ranks = snakemake.resources.tasks if launcher == "srun" else snakemake.threads  # noqa: F821
    out = snakemake.output[0].rsplit("/", 1)[0]  # noqa: F821
    check_host_stability(config, snakemake.input.host, out, ranks, launcher)  # noqa: F821
