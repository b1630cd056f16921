"""Finite-size corrections for charged defects, and locating the defect they need."""

from .freysoldt import FNVAxisData, FNVResult, fnv_correction
from .kumagai import EFNVResult, efnv_correction
from .sites import locate_defect

__all__ = [
    "EFNVResult",
    "FNVAxisData",
    "FNVResult",
    "efnv_correction",
    "fnv_correction",
    "locate_defect",
]
