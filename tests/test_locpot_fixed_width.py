"""The fixed-width grid reader gives bit for bit what ``np.fromstring`` (C ``strtod``) gives.

``engines.potentials._parse_fixed_width`` reads VASP's ``E18.11`` grid columns with array
operations; ``np.fromstring`` is the reference here, and every case that the fast reader
cannot read exactly must come back as None (the caller then uses ``np.fromstring``).
"""

from __future__ import annotations

import numpy as np
import pytest

from perovskite_defects.engines.potentials import _parse_fixed_width


def _vasp_fields(rng: np.random.Generator, count: int, exp_range: int = 99) -> list[str]:
    """Fields as VASP writes them: ' 0.ddddddddddddE+xx' or ' -.dddddddddddE-xx'."""
    out = []
    for _ in range(count):
        digits = "".join(rng.choice(list("0123456789"), 11))
        exponent = int(rng.integers(-exp_range, exp_range + 1))
        lead = "-" if rng.random() < 0.5 else "0"
        out.append(f" {lead}.{digits}E{exponent:+03d}")
    return out


def _lines(fields: list[str], per_line: int) -> bytes:
    rows = [fields[i : i + per_line] for i in range(0, len(fields), per_line)]
    return ("\n".join("".join(row) for row in rows) + "\n").encode()


def _same_bits(fast: np.ndarray | None, text: bytes) -> None:
    ref = np.fromstring(text, sep=" ")
    assert fast is not None
    np.testing.assert_array_equal(fast.view(np.uint64), ref.view(np.uint64))


@pytest.mark.parametrize("count", [5, 1000, 1003])  # 1003: a short last line
def test_vasp_columns_are_read_bit_for_bit(count: int) -> None:
    rng = np.random.default_rng(count)
    fields = _vasp_fields(rng, count)  # exponents up to 99: also the |k| > 22 path
    fields[0] = " -.00000000000E+00"  # negative zero keeps its sign
    text = _lines(fields, 5)
    _same_bits(_parse_fixed_width(text, 0, count, False), text)


def test_other_fixed_layouts_are_read_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(0.0, 3.0, 600) * 10.0 ** rng.integers(-8, 8, 600)
    for fmt, per_line in (("{:13.5E}", 6), ("{:18.10E}", 4), ("{:16.8E}", 5)):
        text = _lines([fmt.format(v) for v in values], per_line)
        _same_bits(_parse_fixed_width(text, 0, values.size, False), text)


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t.replace(b"E+01", b"D+01", 1),  # Fortran D exponent
        lambda t: t.replace(b"5", b"x", 1),  # not a digit
        lambda t: t.replace(b" -.", b"- .", 1),  # minus after a blank
        lambda t: t.replace(b" 0.", b" +.", 1),  # plus sign in the mantissa
        lambda t: t[:40] + b"\n" + t[40:],  # line break inside a field
        lambda t: t.replace(b"\n", b"\r\n"),  # Windows line ends
        lambda t: t[:-10],  # truncated
    ],
)
def test_anything_else_is_left_to_fromstring(damage) -> None:
    fields = _vasp_fields(np.random.default_rng(1), 50, exp_range=5)
    fields[0] = " -.12345678901E+01"
    text = damage(_lines(fields, 5))
    assert _parse_fixed_width(text, 0, 50, False) is None


@pytest.mark.reference
def test_reference_locpot_takes_the_fixed_width_path(cdte_reference) -> None:
    import gzip

    from perovskite_defects.engines import potentials

    raw = gzip.decompress((cdte_reference / "bulk_vasp_gam" / "LOCPOT.gz").read_bytes())
    start = raw.index(b"   80   80   80\n") + len(b"   80   80   80\n")
    body = potentials._first_lines(raw[start:], 80**3)  # the augmentation data after it
    _same_bits(_parse_fixed_width(raw, start, 80**3, True), body)


def test_a_block_followed_by_more_data() -> None:
    fields = _vasp_fields(np.random.default_rng(3), 12, exp_range=5)
    text = b"header\n" + _lines(fields, 5) + b"augmentation occupancies 1 2\n 0.1 0.2\n"
    block = _lines(fields, 5)
    _same_bits(_parse_fixed_width(text, 7, 12, True), block)
    _same_bits(_parse_fixed_width(text, 7, 10, True), _lines(fields[:10], 5))
    assert _parse_fixed_width(text, 7, 13, True) is None  # the next line is not a field
