"""Glue for the thin Snakemake scripts: the job's params and logging to its log file."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def rule_context(smk: Any) -> Iterator[dict[str, Any]]:
    """Log to the rule's log file and yield the job's params as a dict.

    The params are the step's keyword arguments (perovskite_defects/steps/params.py). The
    config is not validated again here: the Snakefile validated it in the process that
    built the job (common.smk), and the job reads only its params.

    An exception is logged as one line naming what went wrong (the full traceback goes to
    the log too) and re-raised, so the job fails and Snakemake removes its outputs.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if smk.log:
        handlers.append(logging.FileHandler(str(smk.log[0]), mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
    logger = logging.getLogger("perovskite_defects")
    try:
        yield dict(smk.params.items())
    except Exception as err:
        logger.error("%s: %s", type(err).__name__, err)
        logger.debug("traceback", exc_info=True)
        raise
