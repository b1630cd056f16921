"""First-principles defect studies of tin-lead halide perovskites.

The science of the workflow lives here; the Snakemake rules only wire files to it.
"""

__version__ = "0.1.0"
