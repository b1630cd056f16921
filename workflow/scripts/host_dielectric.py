from perovskite_defects.hosts.dielectric_run import host_dielectric_step
from perovskite_defects.scripting import rule_context

with rule_context(snakemake) as params:  # noqa: F821 (snakemake is injected)
    host_dielectric_step(snakemake.input[0], snakemake.output[0], **params)  # noqa: F821
