"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

# ../shared/reference relative to the project root: present only in the development workspace.
CDTE_REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "cdte_vcd_m2"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the ``reference`` marker honest: exactly the tests that use ``cdte_reference``
    (directly or through another fixture) carry it, so ``-m reference`` selects them."""
    wrong = [
        item.nodeid
        for item in items
        if ("cdte_reference" in getattr(item, "fixturenames", ()))
        != (item.get_closest_marker("reference") is not None)
    ]
    if wrong:
        raise pytest.UsageError(
            "tests whose @pytest.mark.reference does not match their use of the "
            f"cdte_reference fixture: {', '.join(wrong)}"
        )


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Say how many reference tests were skipped for want of ../shared/reference."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "reference" in r.keywords]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} tests marked 'reference' skipped: {CDTE_REFERENCE} is absent "
            "(the recorded CdTe VASP runs exist only in the development workspace)"
        )


@pytest.fixture(scope="session")
def cdte_reference() -> Path:
    """Folder of the CdTe V_Cd^-2 VASP reference runs (see its README); skip if absent."""
    if not CDTE_REFERENCE.is_dir():
        pytest.skip(
            "reference data ../shared/reference/cdte_vcd_m2 not present "
            "(only in the development workspace)"
        )
    return CDTE_REFERENCE


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def cp2k_available() -> bool:
    import shutil

    return any(shutil.which(exe) for exe in ("cp2k.psmp", "cp2k.popt", "cp2k"))


@pytest.fixture(scope="session")
def cp2k_binary() -> str:
    """The CP2K binary; the real-engine tests fail (not skip) without it: make test installs it."""
    import shutil

    for exe in ("cp2k.psmp", "cp2k.popt", "cp2k"):
        path = shutil.which(exe)
        if path:
            return path
    pytest.fail("no CP2K binary on PATH: run 'make test', which installs Debian's cp2k")


@pytest.fixture(scope="session")
def micro_reference_tables(tmp_path_factory: pytest.TempPathFactory, cp2k_binary: str) -> dict:
    """Tables of one uninterrupted local run of the micro study (tests/configs/micro.yaml).

    Run once per session and shared: the SLURM test and the killed-workflow test both
    compare their tables with it, which saves a whole micro-study run per test.
    """
    from workflow_runner import micro, snakemake, study_tables

    workdir = tmp_path_factory.mktemp("micro-reference")
    proc = snakemake(workdir, micro(), "--cores", "2", timeout=3600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return study_tables(workdir)
