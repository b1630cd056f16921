"""Finished run folders of any engine: which engine made a folder, its record, its potential file.

Library code (band edges, eigenvalues, the CLI) asks here instead of knowing each engine's
file names; this is the only place that dispatches on a folder's contents.
"""

from __future__ import annotations

from pathlib import Path

from perovskite_defects.engines.base import CalcRecord, EngineError


def detect_engine(folder: Path) -> str:
    """'vasp' when the folder holds vasprun.xml(.gz), 'cp2k' when it holds cp2k.out."""
    if not folder.is_dir():
        raise EngineError(f"{folder}: not a folder")
    if any((folder / name).is_file() for name in ("vasprun.xml", "vasprun.xml.gz")):
        return "vasp"
    from perovskite_defects.engines import cp2k  # why: a VASP folder never loads CP2K's module

    if (folder / cp2k.OUTPUT_NAME).is_file():
        return "cp2k"
    raise EngineError(
        f"{folder}: no vasprun.xml(.gz) (VASP) or {cp2k.OUTPUT_NAME} (CP2K) found; "
        "cannot tell which engine made it"
    )


def parse_folder(folder: Path) -> CalcRecord:
    """The engine-neutral record of a finished run folder (CP2K or VASP)."""
    engine = detect_engine(folder)
    if engine == "vasp":
        # why: one engine per folder
        from perovskite_defects.engines.vasp_output import parse_vasp_dir

        return parse_vasp_dir(folder)
    from perovskite_defects.engines import cp2k  # why: only the engine of the folder is loaded

    return cp2k.parse(folder)


def potential_path(record: CalcRecord, folder: Path) -> Path:
    """The electrostatic-potential file of a finished run (LOCPOT or Hartree cube)."""
    if record.potential_file:
        return folder / record.potential_file
    for name in ("LOCPOT.gz", "LOCPOT"):
        if (folder / name).is_file():
            return folder / name
    raise EngineError(f"{folder}: no electrostatic potential file (LOCPOT or Hartree cube)")
