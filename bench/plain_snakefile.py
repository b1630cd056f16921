"""A plain Snakefile with the same jobs and DAG as a dry run of ours, and no package code.

``bench_sweep_dag.py`` times ``snakemake -n`` of the project's workflow against this, to
see what the project's own code (config validation, the study plan, input functions
reading manifests) adds to Snakemake's bookkeeping. Built from the job list of one dry
run of ours (``snakemake -n`` printout: rule, input, output and log files per job):

- one rule per rule of ours with the same name, one job per job of ours, each with as
  many output files and log files and the same ``script:`` directive (an empty script),
  ``threads`` and constant ``resources`` (Snakemake evaluates them for the printout);
- a job's inputs are the outputs of the same upstream jobs as ours (edge for edge), and
  a plain existing file for every input of ours that no job of the dry run makes
  (finished checkpoint outputs such as the manifests, the phase structure files);
- inputs come from a table (``jobs.json``) through a one-line lambda per rule: no
  package import, no config validation, no file reads while the DAG is built.

What the plain workflow does not have: the finished checkpoint jobs themselves (ours
still builds and checks the ~108 ``host_structure``/``defect_manifest`` jobs whose
outputs exist), ``params``, ``conda`` and wildcard constraints.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

_RULE_RE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
_FIELD_RE = re.compile(r"^    (input|output|log): (.*)$")


def dry_run_jobs(output: str) -> list[dict]:
    """Jobs of a ``snakemake -n`` printout: rule name, input, output and log files."""
    jobs: list[dict] = []
    for line in output.splitlines():
        match = _RULE_RE.match(line)
        if match:
            jobs.append({"rule": match.group(1), "input": [], "output": [], "log": []})
            continue
        field = _FIELD_RE.match(line)
        if field and jobs:
            jobs[-1][field.group(1)] = field.group(2).split(", ")
    return jobs


def write_plain_workflow(jobs: list[dict], folder: Path) -> dict[str, int]:
    """Write ``Snakefile``, ``jobs.json``, ``empty.py`` and the existing input files into
    ``folder``; returns the job count per rule."""
    by_rule: dict[str, list[dict]] = {}
    for job in jobs:
        by_rule.setdefault(job["rule"], []).append(job)
    made_by: dict[str, str] = {}
    for rule, rule_jobs in by_rule.items():
        for index, job in enumerate(rule_jobs):
            for k, path in enumerate(job["output"]):
                made_by[path] = f"out/{rule}/{index}.{k}"
    sources: dict[str, str] = {}
    table: dict[str, list[list[str]]] = {}
    for rule, rule_jobs in by_rule.items():
        table[rule] = [
            [made_by.get(p) or sources.setdefault(p, f"src/{len(sources)}") for p in job["input"]]
            for job in rule_jobs
        ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "src").mkdir(exist_ok=True)
    for path in sources.values():
        (folder / path).touch()
    (folder / "jobs.json").write_text(json.dumps(table))
    (folder / "empty.py").write_text("")
    (folder / "Snakefile").write_text(_snakefile(by_rule))
    return {rule: len(rule_jobs) for rule, rule_jobs in by_rule.items()}


def _snakefile(by_rule: dict[str, list[dict]]) -> str:
    lines = [
        "import json",
        'JOBS = json.load(open("jobs.json"))',
        "",
        "wildcard_constraints:",
        '    i=r"\\d+",',
        "",
    ]
    if "all" in by_rule:
        lines += ["rule all:", "    default_target: True", '    input: JOBS["all"][0]', ""]
    for rule, rule_jobs in by_rule.items():
        if rule == "all":
            continue
        n_out = {len(job["output"]) for job in rule_jobs}
        n_log = {len(job["log"]) for job in rule_jobs}
        if len(n_out) != 1 or len(n_log) != 1:
            raise ValueError(f"rule {rule}: jobs with different numbers of outputs or logs")
        outputs = ", ".join(f'"out/{rule}/{{i}}.{k}"' for k in range(n_out.pop()))
        logs = ", ".join(f'"log/{rule}/{{i}}.{k}"' for k in range(n_log.pop()))
        lines += [f"rule {rule}:"]
        lines += [f'    input: lambda wildcards: JOBS["{rule}"][int(wildcards.i)]']
        lines += [f"    output: {outputs}"]
        lines += [f"    log: {logs}"] if logs else []
        lines += ["    threads: 1", "    resources: mem_mb=4000, runtime=120"]
        lines += ['    script: "empty.py"', ""]
    return "\n".join(lines) + "\n"
