"""Finite-size corrections for charged defects, and locating the defect they need."""

from perovskite_defects.corrections.freysoldt import FNVAxisData, FNVResult, fnv_correction
from perovskite_defects.corrections.kumagai import EFNVResult, efnv_correction
from perovskite_defects.corrections.sites import locate_defect

__all__ = [
    "EFNVResult",
    "FNVAxisData",
    "FNVResult",
    "efnv_correction",
    "fnv_correction",
    "locate_defect",
]
