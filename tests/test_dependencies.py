"""One list of dependencies, and rule scripts that import the package from the workflow itself.

pyproject.toml is the source; requirements*.txt and the conda environment are generated from
it. Under ``--sdm conda`` the rule scripts run in an environment that has the dependencies
but not this package: Snakemake puts the script's own folder on ``sys.path``, where the
``perovskite_defects`` link points at the package.
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "workflow" / "scripts"


def test_derived_dependency_files_agree_with_pyproject() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sync_dependencies.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def _clean_interpreter_imports(
    modules: list[str], with_scripts_dir: bool
) -> subprocess.CompletedProcess:
    """Import ``modules`` in a fresh interpreter that sees the environment's packages but
    not this project's installation (-S: no .pth files, so no editable-install hook), with
    Snakemake's script preamble (the script's folder appended to sys.path) or without it."""
    site_packages = sysconfig.get_paths()["purelib"]
    paths = [site_packages] + ([str(SCRIPTS)] if with_scripts_dir else [])
    code = (
        "import sys\n"
        f"sys.path[:] = [p for p in sys.path if 'site-packages' not in p] + {paths!r}\n"
        + "".join(f"import {m}\n" for m in modules)
        + "import perovskite_defects, os\n"
        "print(os.path.realpath(perovskite_defects.__file__))\n"
    )
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, cwd="/"
    )


def _script_modules() -> list[str]:
    found = set()
    for script in SCRIPTS.glob("*.py"):
        found |= set(
            re.findall(r"^from (perovskite_defects[\w.]*) import", script.read_text(), re.M)
        )
    return sorted(found)


def test_rule_scripts_import_the_package_from_the_workflow_folder() -> None:
    modules = _script_modules()
    assert "perovskite_defects.scripting" in modules
    proc = _clean_interpreter_imports(modules, with_scripts_dir=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == str(ROOT / "workflow" / "perovskite_defects" / "__init__.py")


def test_without_the_workflow_folder_the_package_is_not_found() -> None:
    """The check above can fail: the same clean interpreter without the scripts folder."""
    proc = _clean_interpreter_imports(["perovskite_defects.scripting"], with_scripts_dir=False)
    if proc.returncode == 0:
        pytest.fail(f"package importable without the workflow folder: {proc.stdout}")
    assert "No module named 'perovskite_defects'" in proc.stderr
