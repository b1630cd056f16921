"""Config key ``dielectric``: scalar, diagonal and tensor forms, electronic + ionic parts,
and the corrections driven by it (a cubic tensor must give the same as the scalar)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from perovskite_defects import config as cfg
from perovskite_defects.corrections.dielectric import correction_argument, describe, total_tensor


def test_forms_and_parts() -> None:
    np.testing.assert_allclose(total_tensor({"value": 9.13}), 9.13 * np.eye(3))
    np.testing.assert_allclose(total_tensor({"value": [5, 6, 7]}), np.diag([5, 6, 7]))
    full = [[6, 1, 0], [1, 6, 0], [0, 0, 8]]
    np.testing.assert_allclose(total_tensor({"value": full}), full)
    # parts add up (the ionic part alone need not be a dielectric constant)
    np.testing.assert_allclose(total_tensor({"electronic": 5.0, "ionic": [1, 2, 3]}),
                               np.diag([6, 7, 8]))  # fmt: skip
    np.testing.assert_allclose(total_tensor({}), 10.0 * np.eye(3))  # documented default
    assert correction_argument(total_tensor({"value": [[4, 0, 0], [0, 4, 0], [0, 0, 4]]})) == 4.0
    assert "diag(5, 6, 7)" in describe({"value": [5, 6, 7]})


def test_config_validation_messages() -> None:
    base = cfg.validate({})
    assert base["dielectric"]["value"] is None  # default: parts or 10
    ok = cfg.validate({"dielectric": {"value": 12.0, "electronic": 5.0, "ionic": 7.0}})
    assert ok["dielectric"]["value"] == 12.0
    bad = [
        ({"dielectric": {"value": 0.5}}, "dielectric.value"),
        ({"dielectric": {"value": [5, 5]}}, "dielectric.value"),
        ({"dielectric": {"value": [[5, 1, 0], [0, 5, 0], [0, 0, 5]]}}, "not symmetric"),
        ({"dielectric": {"value": 10.0, "electronic": 5.0, "ionic": 4.0}}, "differs from"),
        ({"dielectric": {"electronic": 5.0}}, "dielectric.electronic"),
    ]
    for raw, message in bad:
        with pytest.raises(cfg.ConfigError, match=message.replace(".", r"\.")):
            cfg.validate(raw)


# --- the workflow step on the CdTe reference pair -------------------------------------------


def _prepare(cdte_reference: Path, tmp_path: Path) -> tuple[Path, Path]:
    """record.json + defect.json folders pointing at the VASP reference outputs."""
    from perovskite_defects.corrections import locate_defect
    from perovskite_defects.defects.distinct_sites import DefectCell
    from perovskite_defects.engines.vasp_output import parse_vasp_dir

    dirs = []
    for name in ("bulk_vasp_gam", "v_Cd_-2_vasp_gam"):
        record = parse_vasp_dir(cdte_reference / name)
        record.potential_file = str(cdte_reference / name / str(record.potential_file))
        folder = tmp_path / name
        folder.mkdir()
        record.to_json(folder / "record.json")
        dirs.append((folder, record))
    (bulk_dir, bulk), (defect_dir, defect) = dirs
    _, frac = locate_defect(bulk.pmg_structure(), defect.pmg_structure())
    DefectCell("V_Cd", "vacancy", [-2], {"Cd": -1}, 4, [float(f) for f in frac],
               defect.structure).to_json(defect_dir / "defect.json")  # fmt: skip
    return bulk_dir, defect_dir


def _params(config: dict) -> dict:
    """The correction's arguments from the defect_analysis params of ``config``."""
    from perovskite_defects.steps.params import defect_analysis_params

    params = dict(defect_analysis_params(config))
    return {k: params[k] for k in ("scheme", "dielectric", "site_radius")}


@pytest.mark.parametrize("scheme", ["fnv", "efnv"])
@pytest.mark.reference
def test_cubic_tensor_equals_scalar_in_the_step(cdte_reference: Path, tmp_path: Path, scheme):
    from perovskite_defects.steps.analysis import correction

    bulk_dir, defect_dir = _prepare(cdte_reference, tmp_path)
    results = []
    forms = (9.13, [9.13] * 3, (9.13 * np.eye(3)).tolist(), {"electronic": 6.0, "ionic": 3.13})
    for eps in forms:
        dielectric = eps if isinstance(eps, dict) else {"value": eps}
        config = cfg.validate({"correction": scheme, "dielectric": dielectric})
        out = tmp_path / f"corr_{len(results)}.json"
        results.append(correction(bulk_dir, defect_dir, out, **_params(config)))
        tensor = np.array(json.loads(out.read_text())["dielectric_tensor"])
        np.testing.assert_allclose(tensor, 9.13 * np.eye(3), atol=1e-12)
    for other in results[1:]:
        assert other["total"] == pytest.approx(results[0]["total"], abs=1e-9)
    if scheme == "fnv":  # the reference value of doped (planar averages, same for both)
        assert results[0]["total"] == pytest.approx(0.7278, abs=0.01)
    assert results[0]["error"] >= 0.0
    if scheme == "efnv":  # correction.json names its sampling region and reports both
        written = json.loads((tmp_path / "corr_0.json").read_text())
        assert written["sampling"] == "half_max_face_distance"
        both = written["by_sampling"]
        assert set(both) == {"half_max_face_distance", "ws_inscribed_sphere"}
        assert both["half_max_face_distance"]["total"] == pytest.approx(written["total"])
    # an anisotropic tensor changes it: the tensor really reaches the correction
    config = cfg.validate({"correction": scheme, "dielectric": {"value": [9.13, 9.13, 20.0]}})
    aniso = correction(bulk_dir, defect_dir, tmp_path / "aniso.json", **_params(config))
    assert abs(aniso["total"] - results[0]["total"]) > 0.05
