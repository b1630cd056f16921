# The one rule that costs CPU hours: run the engine in a prepared folder, parse the result,
# and write record.json only when the run converged.


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
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
        runtime=lambda wildcards, attempt: 120 * attempt,
    script:
        "../scripts/run_calculation.py"
