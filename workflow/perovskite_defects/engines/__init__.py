"""DFT engines behind one interface (:class:`~.base.Engine`) and one record (CalcRecord).

``get_engine(name)`` returns the engine a study's ``engine`` config key names. Production
engines are listed in :data:`ENGINES` (and in the config schema's enum). The replay engine
for tests (:mod:`.replay_recorded`) is deliberately *not* in that list: see
:func:`engine_for_run`.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from perovskite_defects.engines.base import Engine, EngineError

#: Production engines: config name -> "module:class" (imported lazily: pymatgen is slow).
ENGINES: dict[str, str] = {
    "cp2k": "cp2k:Cp2kEngine",
    "vasp": "vasp:VaspEngine",
}

#: Environment variable that a test sets to the path of a replay plan (JSON) to make the
#: run step copy recorded outputs instead of running the DFT engine. Never set it in
#: production; see :mod:`.replay_recorded`.
REPLAY_ENV = "PEROVSKITE_DEFECTS_REPLAY_RECORDED_TEST_ONLY"


def get_engine(name: str) -> Engine:
    """The production engine called ``name`` (``cp2k`` or ``vasp``)."""
    if name not in ENGINES:
        raise EngineError(
            f"config key 'engine': {name!r} is not an engine; choose one of {sorted(ENGINES)}"
        )
    module_name, class_name = ENGINES[name].split(":")
    module = importlib.import_module(f"{__name__}.{module_name}")
    engine: Engine = getattr(module, class_name)()
    return engine


def engine_for_run(config: Mapping[str, Any]) -> Engine:
    """The engine that executes the run step of ``config``.

    This is ``get_engine(config["engine"])`` unless the test-only environment variable
    :data:`REPLAY_ENV` is set, in which case the replay engine wraps the configured engine:
    it writes inputs and parses exactly like it, but copies recorded outputs instead of
    running. The replay name is not a config value, so a config file can never select it.
    """
    engine = get_engine(config["engine"])
    plan = os.environ.get(REPLAY_ENV)
    if plan:
        # why: the test-only replay engine stays out of production runs
        from perovskite_defects.engines.replay_recorded import ReplayRecordedEngine

        return ReplayRecordedEngine(engine, plan)
    return engine
