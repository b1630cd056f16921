"""Write the CP2K inputs of the CsSnI3 2x1x1 test cells (bulk q0 and hole q+1).

Run from this folder with the package importable (PYTHONPATH=<repo>/workflow); then in each
of bulk/ and hole_q1/: OMP_NUM_THREADS=1 cp2k.psmp -i cp2k.inp -o cp2k.out; gzip cp2k.out.
"""

from pathlib import Path

from perovskite_defects.engines.cp2k import write_input
from perovskite_defects.engines.cp2k_settings import Cp2kSettings
from perovskite_defects.hosts.composition import end_member_lattice
from perovskite_defects.hosts.perovskite import cubic_prototype, supercell

a, src = end_member_lattice("Cs", "Sn", "I")
cell = supercell(cubic_prototype("Cs", "Sn", "I", a), [2, 1, 1])
print(a, src, cell.composition, cell.lattice.abc)
s = Cp2kSettings.for_level(
    "fast", {"cutoff_ry": 150.0, "rel_cutoff_ry": 30.0, "supercell_mixing": "broyden"}
)
for name, q in (("bulk", 0), ("hole_q1", 1)):
    write_input(cell, "static", q, s, Path(name), is_supercell=True)
