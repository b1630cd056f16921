# The findings page: plain sentences written from the tables of every host and across
# hosts, each number citing its file, row and column (Markdown, and HTML for the report).

FINDINGS = [f"{RESULTS}/findings.md", f"{RESULTS}/findings.html"]


rule findings:
    input:
        tables=expand(
            "{results}/{host}/tables/{name}.csv",
            results=RESULTS,
            host=HOSTS,
            name=HOST_TABLE_NAMES,
        ),
        provenance=expand(
            "{results}/{host}/tables/provenance.json", results=RESULTS, host=HOSTS
        ),
        chempots=expand(
            "{results}/{host}/chemical_potentials.json", results=RESULTS, host=HOSTS
        ),
        aggregate=[
            f"{RESULTS}/tables/provenance.json",
            f"{RESULTS}/tables/dopant_effect.csv",
        ],
        plots=PLOTS,
    output:
        md=FINDINGS[0],
        html=report(
            FINDINGS[1],
            caption="../report/findings.rst",
            category="Findings",
        ),
    log:
        f"logs/{STUDY}/findings.log",
    conda:
        "../../envs/perovskite-defects.yaml"
    script:
        "../scripts/findings.py"
