# The ground-state search (config ground_state_search: screen or full; docs/physics-and-
# settings.md "Ground-state search"). Defined only when it is on: with off these rules do
# not exist, so the DAG and every output of a study are what they were.
#
# Per defect and charge state: one trial folder per bond distortion (ShakeNBreak's method,
# defects/distortions.py) plus Unperturbed, relaxed at loose thresholds by run_calculation
# like any calc (resume, SCF ladder, failure records); then the new ground states of each
# charge state relaxed in the others; per defect a summary (energy against distortion,
# lowest trial); the production inputs start from the lowest trial when it is more than
# 0.05 eV below Unperturbed (steps/search.py).

if SEARCH_ON:

    rule search_trial:
        input:
            manifest="results/{study}/{host}/defects/manifest.tsv",
            bulk="results/{study}/{host}/bulk/calc.json",
        output:
            "results/{study}/{host}/defects/{defect}/search/q{charge}/{label}/calc.json",
        log:
            "logs/{study}/{host}/defects/{defect}/search/q{charge}/{label}/inputs.log",
        wildcard_constraints:
            host=HOST_RE,
            label=r"Unperturbed|Rattled|Bond_Distortion_-?\d+\.\d%",
        conda:
            "../../envs/perovskite-defects.yaml"
        params:
            **SEARCH_TRIAL_PARAMS,
        script:
            "../scripts/search_trial.py"

    # Round 1: the trials above; its summary lists the new ground states to try in the
    # other charge states (a checkpoint: which they are is known only then).
    checkpoint search_round1:
        input:
            manifest="results/{study}/{host}/defects/manifest.tsv",
            trials=search_trial_records,
        output:
            "results/{study}/{host}/defects/{defect}/search/round1.json",
        log:
            "logs/{study}/{host}/defects/{defect}/search/round1.log",
        wildcard_constraints:
            host=HOST_RE,
        conda:
            "../../envs/perovskite-defects.yaml"
        params:
            **pd_params.search_summary_params(CONFIG),
        script:
            "../scripts/search_round1.py"

    # Round 2: a new ground state of charge <source> relaxed in charge {charge}.
    rule search_cross_trial:
        input:
            manifest="results/{study}/{host}/defects/manifest.tsv",
            bulk="results/{study}/{host}/bulk/calc.json",
            source=cross_trial_source,
        output:
            "results/{study}/{host}/defects/{defect}/search/q{charge}/{label}_from_{source}/calc.json",
        log:
            "logs/{study}/{host}/defects/{defect}/search/q{charge}/{label}_from_{source}/inputs.log",
        wildcard_constraints:
            host=HOST_RE,
            label=r"Rattled|Bond_Distortion_-?\d+\.\d%",
            source=r"[+-]?\d+",
        conda:
            "../../envs/perovskite-defects.yaml"
        params:
            **SEARCH_TRIAL_PARAMS,
        script:
            "../scripts/search_cross_trial.py"

    rule search_summary:
        input:
            manifest="results/{study}/{host}/defects/manifest.tsv",
            trials=search_all_records,
        output:
            json="results/{study}/{host}/defects/{defect}/search/summary.json",
            csv="results/{study}/{host}/defects/{defect}/search/summary.csv",
            png="results/{study}/{host}/defects/{defect}/search/summary.png",
            svg="results/{study}/{host}/defects/{defect}/search/summary.svg",
        log:
            "logs/{study}/{host}/defects/{defect}/search/summary.log",
        wildcard_constraints:
            host=HOST_RE,
        conda:
            "../../envs/perovskite-defects.yaml"
        params:
            **pd_params.search_summary_params(CONFIG),
        script:
            "../scripts/search_summary.py"

    # The production inputs of a searched defect: the same output as defect_inputs, which
    # this rule replaces while the search is on.
    rule defect_inputs_searched:
        input:
            manifest="results/{study}/{host}/defects/manifest.tsv",
            bulk="results/{study}/{host}/bulk/calc.json",
            summary="results/{study}/{host}/defects/{defect}/search/summary.json",
        output:
            "results/{study}/{host}/defects/{defect}_q{charge}/calc.json",
        log:
            "logs/{study}/{host}/defects/{defect}_q{charge}/inputs.log",
        wildcard_constraints:
            host=HOST_RE,
        conda:
            "../../envs/perovskite-defects.yaml"
        params:
            **pd_params.defect_inputs_searched_params(CONFIG),
        script:
            "../scripts/defect_inputs_searched.py"

    ruleorder: defect_inputs_searched > defect_inputs
