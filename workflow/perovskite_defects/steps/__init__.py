"""Workflow steps: one module per rule file, one function per rule, files in and files out.

Rules call these through ``workflow/scripts/*.py``; every function is usable (and tested)
without Snakemake.
"""
