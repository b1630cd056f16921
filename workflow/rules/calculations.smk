# The one rule that costs CPU hours: run the engine in a prepared folder, parse the result,
# and write record.json only when the run converged (a defect that fails for good gets a
# failure record instead; see perovskite_defects/engines/recovery.py).
#
# Resources grow with Snakemake's attempt number, so a job killed for memory or walltime
# is resubmitted bigger (`--retries N`; the profiles set it). Killed runs resume from the
# restart state in <calc>/restart/. Locally, `threads` is the number of MPI ranks and
# CP2K is started with cp2k.mpi_launcher (mpirun); on SLURM one rank is one task with one
# core, and the `mpi` resource (srun) starts them inside the allocation.


rule run_calculation:
    input:
        "results/{study}/{calc}/calc.json",
    output:
        "results/{study}/{calc}/record.json",
    log:
        "logs/{study}/{calc}/run.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    threads: dft_threads()
    resources:
        mem_mb=lambda wildcards, threads, attempt: dft_mem_mb(threads, attempt),
        runtime=lambda wildcards, attempt: dft_runtime_min(attempt),
        tasks=dft_threads(),
        cpus_per_task=1,
        mpi=dft_mpi_launcher,
    params:
        **dft_run_params(),
    script:
        "../scripts/run_calculation.py"
