"""Host stage: host structures and their computed properties (phonons, dielectric tensor).

Until the package restructure lands, the perovskite host builder (old ``hosts.py``, now
``hosts/perovskite.py``) is re-exported here so that ``from perovskite_defects.hosts
import build_host`` keeps working.
"""

from perovskite_defects.hosts.perovskite import (  # noqa: F401 (re-exports)
    PARENT_A,
    PROTOTYPE_FRAC_COORDS,
    HostStructure,
    build_host,
    cubic_prototype,
    load_user_structure,
    min_image_distance,
    parent_cell,
    supercell,
)
