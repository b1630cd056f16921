"""Write (or check) requirements*.txt and the conda environment from pyproject.toml.

pyproject.toml is the one list of dependencies: ``[project] dependencies`` (exact pins of
what the workflow was tested with) and ``[project.optional-dependencies] test``.

    python scripts/sync_dependencies.py          # rewrite the three derived files
    python scripts/sync_dependencies.py --check  # exit 1 naming each file that differs
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]
# Packages conda-forge does not carry (or not at our pin): installed by pip inside the env.
PIP_IN_CONDA = {"pymatgen-core", "pymatgen-analysis-defects", "icet"}
# PyPI name -> conda-forge name where they differ.
CONDA_NAME = {"snakemake": "snakemake-minimal", "PyYAML": "pyyaml"}
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)$")


def _pins(specs: list[str], what: str) -> list[tuple[str, str]]:
    pins = []
    for spec in specs:
        match = PIN.match(spec.strip())
        if not match:
            raise SystemExit(f"pyproject.toml {what}: {spec!r} is not an exact pin (name==version)")
        pins.append((match.group(1), match.group(2)))
    return pins


def derived_files() -> dict[Path, str]:
    """The text each derived file must have."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _pins(project["dependencies"], "[project] dependencies")
    test = _pins(project["optional-dependencies"]["test"], "optional-dependencies.test")
    head = "# Generated from pyproject.toml by scripts/sync_dependencies.py: edit pyproject.toml.\n"
    requirements = head + "".join(f"{n}=={v}\n" for n, v in runtime)
    requirements_test = head + "-r requirements.txt\n" + "".join(f"{n}=={v}\n" for n, v in test)
    conda = [f"  - {CONDA_NAME.get(n, n)}={v}\n" for n, v in runtime if n not in PIP_IN_CONDA]
    pip = [f"      - {n}=={v}\n" for n, v in runtime if n in PIP_IN_CONDA]
    env = (
        head
        + "# Conda environment for cluster users running Snakemake with --sdm conda. The rule\n"
        "# scripts find the perovskite_defects package from the workflow's own folder (the\n"
        "# workflow/scripts/perovskite_defects link), so the environment needs only these.\n"
        "name: perovskite-defects\nchannels:\n  - conda-forge\ndependencies:\n"
        "  - python=3.11\n  - pip\n" + "".join(conda) + "  - pip:\n" + "".join(pip)
    )
    return {
        ROOT / "requirements.txt": requirements,
        ROOT / "requirements-test.txt": requirements_test,
        ROOT / "envs" / "perovskite-defects.yaml": env,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    args = parser.parse_args(argv)
    stale = []
    for path, text in derived_files().items():
        current = path.read_text() if path.exists() else None
        if current != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    if args.check and stale:
        for path in stale:
            print(
                f"{path.relative_to(ROOT)}: out of date with pyproject.toml; run "
                "python scripts/sync_dependencies.py",
                file=sys.stderr,
            )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
