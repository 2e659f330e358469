"""Reader of LGAR-C forcing files: a header line, then ``time,P,PET`` per line, P and PET in mm/h.

This is the format the LGAR-C standalone driver (``src/bmi_main_lgar.cxx``) reads: the first line is
skipped, each further line is split at commas, the first field is kept as the time label, the second
and third are parsed as doubles (``std::stod``; Python's ``float`` gives the same correctly rounded
value).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class ForcingError(ValueError):
    """A forcing file that cannot be read."""


@dataclass(frozen=True)
class Forcing:
    """Forcing series of an LGAR run.

    Attributes
    ----------
    time : list of str
        Time label of each record, as written.
    precip_mm_per_h : numpy.ndarray
        Precipitation rate [mm/h].
    pet_mm_per_h : numpy.ndarray
        Potential evapotranspiration rate [mm/h].
    """

    time: list[str]
    precip_mm_per_h: np.ndarray
    pet_mm_per_h: np.ndarray

    def __len__(self) -> int:
        return len(self.time)


def read_forcing(path: str | Path) -> Forcing:
    """Read an LGAR forcing file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ForcingError(f"forcing file {path} does not exist")
    time: list[str] = []
    precip: list[float] = []
    pet: list[float] = []
    for lineno, line in enumerate(path.read_text().splitlines()[1:], start=2):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) < 3:
            raise ForcingError(f"{path}, line {lineno}: expected time,P,PET, got {line!r}")
        try:
            p, e = float(cells[1]), float(cells[2])
        except ValueError:
            raise ForcingError(f"{path}, line {lineno}: P and PET must be numbers, got "
                               f"{line!r}") from None
        time.append(cells[0])
        precip.append(p)
        pet.append(e)
    return Forcing(time, np.array(precip, dtype=np.float64), np.array(pet, dtype=np.float64))
