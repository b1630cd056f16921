"""The dielectric tensor of a study, from config key ``dielectric``.

Accepted forms for ``value``, ``electronic`` and ``ionic``: a scalar (isotropic), three
diagonal values, or a 3x3 symmetric positive-definite tensor (Cartesian axes, same frame as
the structures). The correction needs the static total, electronic + ionic:

- ``value`` given: it is the total; if ``electronic`` and ``ionic`` are given too, their sum
  must equal it (a config that contradicts itself is an error, not a guess).
- only ``electronic`` and ``ionic``: the total is their sum.
- nothing: the default total, :data:`DEFAULT_TOTAL`.

Only one of the two parts without ``value`` cannot make a total and is an error.

``screening: electronic`` makes the corrections screen with ``electronic`` (eps_inf)
instead of the total: the screening of a charge whose surrounding ions do not move, i.e.
of unrelaxed (ideal-site, vertical) defects. It needs ``electronic`` (cited or computed);
with ``source: computed`` it also lets a host whose ionic part is undefined (an imaginary
optical Gamma mode) be corrected with its computed eps_inf.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: Total (static) dielectric constant used when config gives neither value nor parts.
DEFAULT_TOTAL = 10.0
#: ``dielectric.source`` asking for the tensor computed by the workflow (hosts/dielectric_run).
COMPUTED = "computed"
#: ``dielectric.screening``: the static total (default) or the electronic part alone.
SCREENINGS = ("static", "electronic")


def screening(dielectric: Mapping[str, Any]) -> str:
    """``dielectric.screening``, default ``static``; one line naming the key if unknown."""
    value = str(dielectric.get("screening") or "static")
    if value not in SCREENINGS:
        raise DielectricError(
            f"config key 'dielectric.screening': {value!r} is not one of {list(SCREENINGS)}"
        )
    return value


def is_computed(dielectric: Mapping[str, Any]) -> bool:
    """True when config ``dielectric.source`` asks for the computed tensor.

    Here, not in hosts/dielectric_run.py, because the Snakefile parse and the config
    validation ask it, and that module loads phonopy and scipy (~1 s) for the calculation.
    """
    return str(dielectric.get("source", "")).strip().lower() == COMPUTED


class ComputedDielectricError(ValueError):
    """The computed dielectric tensor is missing or unusable; the message says why."""


def effective_dielectric(
    dielectric: Mapping[str, Any], computed_json: str | Path | None, host: str = ""
) -> dict[str, Any]:
    """Config ``dielectric`` with the computed tensors filled in (unchanged if cited).

    Raises :class:`ComputedDielectricError` (one line) when the source is ``computed`` but
    the file is missing or its ionic part was refused.
    """
    if not is_computed(dielectric):
        return dict(dielectric)
    where = f"host {host}: " if host else ""
    if computed_json is None or not Path(computed_json).is_file():
        raise ComputedDielectricError(
            f"{where}config key 'dielectric.source' is 'computed' but {computed_json} is missing"
        )
    data = json.loads(Path(computed_json).read_text())
    electronic_only = screening(dielectric) == "electronic"
    if data.get("ionic") is None and not electronic_only:
        raise ComputedDielectricError(
            f"{where}{computed_json}: no ionic part ({data.get('ionic_refused')}); give "
            "'dielectric.value' (cited) for this host instead, or 'dielectric.screening: "
            "electronic' for unrelaxed defects"
        )
    source = f"computed ({computed_json})"
    if data.get("ionic") is None:
        source += f"; ionic part refused: {data.get('ionic_refused')}"
    return {
        "value": None,
        "electronic": data["electronic"],
        "ionic": data["ionic"],
        "screening": screening(dielectric),
        "source": source,
    }


class DielectricError(ValueError):
    """Config key ``dielectric`` is inconsistent; the message names the key."""


def as_tensor(value: Any, key: str = "dielectric.value") -> np.ndarray:
    """3x3 symmetric positive-definite tensor from a scalar, 3 values or a 3x3 array."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise DielectricError(f"config key '{key}': {value!r} is not a number or tensor") from None
    if arr.shape == ():
        tensor = float(arr) * np.eye(3)
    elif arr.shape == (3,):
        tensor = np.diag(arr)
    elif arr.shape == (3, 3):
        tensor = arr
    else:
        raise DielectricError(
            f"config key '{key}': give a scalar, 3 diagonal values or a 3x3 tensor, "
            f"got shape {arr.shape}"
        )
    if not np.all(np.isfinite(tensor)):
        raise DielectricError(f"config key '{key}': values must be finite")
    if not np.allclose(tensor, tensor.T, rtol=1e-6, atol=1e-8):
        raise DielectricError(f"config key '{key}': tensor is not symmetric: {tensor.tolist()}")
    if np.linalg.eigvalsh(tensor).min() <= 0.0:
        raise DielectricError(f"config key '{key}': tensor must be positive definite")
    return tensor


def total_tensor(dielectric: Mapping[str, Any]) -> np.ndarray:
    """The static (electronic + ionic) tensor the corrections use, from config ``dielectric``."""
    value = dielectric.get("value")
    electronic = dielectric.get("electronic")
    ionic = dielectric.get("ionic")
    parts = None
    if electronic is not None and ionic is not None:
        e_t = as_tensor(electronic, "dielectric.electronic")
        i_t = ionic_tensor = np.asarray(ionic, dtype=float)
        # the ionic part may be zero or small (it is not itself a dielectric constant), so
        # only the sum has to be positive definite
        if ionic_tensor.shape == ():
            i_t = float(ionic_tensor) * np.eye(3)
        elif ionic_tensor.shape == (3,):
            i_t = np.diag(ionic_tensor)
        elif ionic_tensor.shape != (3, 3):
            raise DielectricError(
                f"config key 'dielectric.ionic': give a scalar, 3 diagonal values or a 3x3 "
                f"tensor, got shape {ionic_tensor.shape}"
            )
        parts = as_tensor(e_t + i_t, "dielectric.electronic + dielectric.ionic")
    elif (electronic is None) != (ionic is None) and value is None:
        given = "electronic" if electronic is not None else "ionic"
        raise DielectricError(
            f"config key 'dielectric.{given}': the total needs both 'electronic' and 'ionic' "
            "(or 'value')"
        )
    if value is None:
        return parts if parts is not None else DEFAULT_TOTAL * np.eye(3)
    total = as_tensor(value, "dielectric.value")
    if np.linalg.eigvalsh(total).min() <= 1.0:
        raise DielectricError(
            "config key 'dielectric.value': a static dielectric constant must exceed 1 "
            f"(vacuum), got {value!r}"
        )
    if parts is not None and not np.allclose(total, parts, rtol=1e-6, atol=1e-6):
        raise DielectricError(
            f"config key 'dielectric.value': {np.round(total, 6).tolist()} differs from "
            f"electronic + ionic = {np.round(parts, 6).tolist()}"
        )
    return total


def screening_tensor(dielectric: Mapping[str, Any]) -> np.ndarray:
    """The tensor the corrections screen with: the static total, or eps_inf alone."""
    if screening(dielectric) == "static":
        return total_tensor(dielectric)
    if dielectric.get("electronic") is None:
        raise DielectricError(
            "config key 'dielectric.screening': 'electronic' needs 'dielectric.electronic' "
            "(or 'dielectric.source: computed')"
        )
    return as_tensor(dielectric["electronic"], "dielectric.electronic")


def correction_argument(tensor: np.ndarray) -> float | np.ndarray:
    """A scalar for an isotropic tensor (same numbers, simpler provenance), else the tensor."""
    if np.allclose(tensor, tensor[0, 0] * np.eye(3), rtol=1e-12, atol=0.0):
        return float(tensor[0, 0])
    return tensor


def describe(dielectric: Mapping[str, Any]) -> str:
    """Short text for table notes, e.g. '10.0' or 'diag(5, 5, 7.5)'."""
    tensor = screening_tensor(dielectric)
    if np.allclose(tensor, tensor[0, 0] * np.eye(3), rtol=1e-12, atol=0.0):
        text = f"{tensor[0, 0]:g}"
    elif np.allclose(tensor, np.diag(np.diag(tensor)), atol=1e-12):
        text = "diag(" + ", ".join(f"{v:g}" for v in np.diag(tensor)) + ")"
    else:
        text = str(np.round(tensor, 4).tolist())
    if screening(dielectric) == "electronic":
        return text + " (electronic part, eps_inf: screening of unrelaxed defects)"
    if dielectric.get("electronic") is not None and dielectric.get("ionic") is not None:
        text += f" (electronic {dielectric['electronic']}, ionic {dielectric['ionic']})"
    return text
