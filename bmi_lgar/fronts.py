"""Wetting fronts of LGAR held in parallel arrays of bounded length (surface first).

LGAR-C keeps its wetting fronts in a linked list; here they are parallel arrays indexed from 0
(LGAR-C's ``front_num`` is index + 1), which a C++ kernel can mirror with fixed-capacity arrays.
Inserting or deleting a front shifts the fronts below it, as renumbering does in LGAR-C.

Units: depth [cm] from the land surface to the front, theta [-], psi [cm] (capillary head, positive
= suction), K [cm/h], dzdt [cm/h]; ``layer`` is the 1-based soil layer holding the front and
``to_bottom`` is true for a front that fills its layer down to the layer bottom.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Capacity of the front arrays (LGAR-C's ``MAX_NUM_WETTING_FRONTS``).
MAX_NUM_WETTING_FRONTS = 300


class FrontCapacityError(RuntimeError):
    """More wetting fronts than the arrays hold."""


@dataclass
class Fronts:
    """Wetting fronts from the surface down (see the module docstring for units)."""

    depth: list[float]
    theta: list[float]
    psi: list[float]
    k: list[float]
    layer: list[int]
    to_bottom: list[bool]
    dzdt: list[float]

    @classmethod
    def empty(cls) -> "Fronts":
        """No fronts."""
        return cls([], [], [], [], [], [], [])

    @property
    def n(self) -> int:
        """Number of fronts."""
        return len(self.depth)

    def copy(self) -> "Fronts":
        """An independent copy (LGAR-C's ``listCopy``)."""
        return Fronts(self.depth[:], self.theta[:], self.psi[:], self.k[:], self.layer[:],
                      self.to_bottom[:], self.dzdt[:])

    def insert(self, i: int, depth: float, theta: float, layer: int, to_bottom: bool) -> None:
        """Insert a front at index ``i`` (psi and K not yet known: nan; dz/dt 0)."""
        if self.n >= MAX_NUM_WETTING_FRONTS:
            raise FrontCapacityError(f"more than {MAX_NUM_WETTING_FRONTS} wetting fronts")
        self.depth.insert(i, depth)
        self.theta.insert(i, theta)
        self.psi.insert(i, math.nan)
        self.k.insert(i, math.nan)
        self.layer.insert(i, layer)
        self.to_bottom.insert(i, to_bottom)
        self.dzdt.insert(i, 0.0)

    def remove(self, i: int) -> None:
        """Remove the front at index ``i``."""
        for arr in (self.depth, self.theta, self.psi, self.k, self.layer, self.to_bottom,
                    self.dzdt):
            del arr[i]

    def as_arrays(self, capacity: int = MAX_NUM_WETTING_FRONTS) -> dict[str, np.ndarray]:
        """The fronts as fixed-length arrays (nan / 0 / False past :attr:`n`) plus ``n``."""
        out: dict[str, np.ndarray] = {}
        for name in ("depth", "theta", "psi", "k", "dzdt"):
            arr = np.full(capacity, np.nan)
            arr[:self.n] = getattr(self, name)
            out[name] = arr
        layer = np.zeros(capacity, dtype=np.int64)
        layer[:self.n] = self.layer
        bottom = np.zeros(capacity, dtype=bool)
        bottom[:self.n] = self.to_bottom
        out["layer"], out["to_bottom"] = layer, bottom
        out["n"] = np.array(self.n)
        return out
