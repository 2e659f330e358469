"""Read and write configuration files of the NOAA-OWP C CFE (``key=value[units]`` per line).

The reader accepts the keys and aliases the C model accepts, applies its defaults and its rules for
initial storages, and refuses what the C model would abort on (missing required keys) with a message
naming the key. It also refuses what the C model would silently misread: a value in other units
than the key's (the C reader drops ``[units]``), and two aliases (``soil_params.b`` and
``soil_params.bb``...) or a repeated key with different values. Options we do not support (frozen-soil coupling, root-zone AET) are refused rather
than ignored. Keys the C model would silently ignore are reported as warnings (usually typos).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bmi_dcfe.physics import CfeOptions, CfeParameters, CfeState, initial_state


class CfeConfigError(ValueError):
    """A CFE config file that the C model would refuse or that we cannot honour."""


#: Scalar keys -> (attribute, default or None if required). Aliases as in the C reader.
_SCALARS: dict[str, tuple[str, float | None]] = {
    "soil_params.depth": ("depth", None), "soil_params.D": ("depth", None),
    "soil_params.b": ("bb", None), "soil_params.bb": ("bb", None),
    "soil_params.satdk": ("satdk", None),
    "soil_params.satpsi": ("satpsi", None),
    "soil_params.slop": ("slop", None), "soil_params.slope": ("slop", None),
    "soil_params.smcmax": ("smcmax", None), "soil_params.maxsmc": ("smcmax", None),
    "soil_params.wltsmc": ("wltsmc", None),
    "soil_params.expon": ("expon_soil", 1.0),
    "soil_params.expon_secondary": ("expon_soil_secondary", 1.0),
    "soil_params.refkdt": ("refkdt", 3.0), "refkdt": ("refkdt", 3.0),
    "max_gw_storage": ("max_gw_storage", None),
    "Cgw": ("cgw", None),
    "expon": ("expon_gw", None),
    "gw_storage": ("gw_storage", None),
    "alpha_fc": ("alpha_fc", None), "soil_params.alpha_fc": ("alpha_fc", None),
    "soil_storage": ("soil_storage", None),
    "K_nash_subsurface": ("k_nash", None), "K_nash": ("k_nash", None),
    "K_lf": ("k_lf", None),
    "K_nash_surface": ("k_nash_surface", None),
    "Kinf_nash_surface": ("k_infiltration", 0.001),
    "retention_depth_nash_surface": ("retention_depth", 0.001),
    "a_Xinanjiang_inflection_point_parameter": ("xaj_a", None),
    "b_Xinanjiang_shape_parameter": ("xaj_b", None),
    "x_Xinanjiang_shape_parameter": ("xaj_x", None),
    "urban_decimal_fraction": ("urban_fraction", None),
}
_INTS = {"N_nash_subsurface": 2, "N_nash_surface": None, "nsubsteps_nash_surface": 10,
         "num_timesteps": 1, "verbosity": 0, "DEBUG": 0}
_LISTS = ("giuh_ordinates", "nash_storage_subsurface", "nash_storage_surface")
_STRINGS = ("forcing_file", "surface_runoff_scheme", "surface_water_partitioning_scheme",
            "surface_partitioning_scheme", "is_sft_coupled", "is_aet_rootzone",
            "ice_content_threshold", "soil_layer_depths", "max_rootzone_layer")
_PARTITIONING = {"Schaake": "schaake", "schaake": "schaake", "1": "schaake",
                 "Xinanjiang": "xinanjiang", "xinanjiang": "xinanjiang", "2": "xinanjiang"}
_SURFACE = {"GIUH": "giuh", "giuh": "giuh", "1": "giuh",
            "NASH_CASCADE": "nash_cascade", "nash_cascade": "nash_cascade", "2": "nash_cascade"}
_TRUE = ("true", "True", "1")
#: Units a scalar may be written in, per attribute (the first is the C model's); any other unit
#: in brackets is refused (the C reader drops the brackets, so a value in other units would be
#: silently wrong). Attributes not listed are dimensionless.
_DIMENSIONLESS = ("", "-", "1", "m/m", "m m-1", "m3/m3", "m3 m-3")
_PER_HOUR = ("h-1", "1/h", "")  # the C CFE's Nash and lateral-flow constants (files write [])
_UNITS: dict[str, tuple[str, ...]] = {
    "depth": ("m",), "satpsi": ("m",), "max_gw_storage": ("m",), "retention_depth": ("m",),
    "satdk": ("m s-1", "m/s"), "cgw": ("m h-1", "m/h"),
    "k_nash": _PER_HOUR, "k_lf": _PER_HOUR, "k_nash_surface": _PER_HOUR,
    "k_infiltration": _PER_HOUR}
_REQUIRED_XAJ = ("xaj_a", "xaj_b", "xaj_x", "urban_fraction")


@dataclass
class CfeConfig:
    """One catchment's CFE configuration (values as in the file, SI units of the C model).

    ``soil_storage`` and ``gw_storage`` are initial fractions of the soil capacity (porosity x
    depth) and of max_gw_storage.
    """

    values: dict[str, float]
    options: CfeOptions
    giuh_ordinates: list[float] = field(default_factory=list)
    nash_lateral: list[float] = field(default_factory=lambda: [0.0, 0.0])
    nash_surface: list[float] = field(default_factory=list)
    forcing_file: str = "BMI"

    # ------------------------------------------------------------------ reading
    @classmethod
    def read(cls, path: str | Path) -> "CfeConfig":
        """Parse a C CFE config file (see module docstring)."""
        path = Path(path)
        raw: dict[str, str] = {}
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            key, sep, rest = line.partition("=")
            if not sep:
                raise CfeConfigError(f"{path}:{lineno}: expected key=value, got {line!r}")
            key = key.strip()
            value, bracket, units = rest.partition("[")
            if bracket and key in _SCALARS:
                _check_units(key, value.strip(), units.partition("]")[0], f"{path}:{lineno}")
            if key in raw and raw[key] != value.strip():
                raise CfeConfigError(f"{path}:{lineno}: {key} given twice ({raw[key]} and "
                                     f"{value.strip()}): keep one")
            raw[key] = value.strip()
        return cls.from_mapping(raw, where=str(path))

    @classmethod
    def from_mapping(cls, raw: dict[str, str], where: str = "CFE config") -> "CfeConfig":
        """Build from ``key -> value text`` pairs (the C reader's rules)."""
        values: dict[str, float] = {}
        ints = {k: v for k, v in _INTS.items() if v is not None}
        lists: dict[str, list[float]] = {}
        strings: dict[str, str] = {}
        set_by: dict[str, str] = {}  # attribute -> the key (of its aliases) that set it
        for key, text in raw.items():
            if key in _SCALARS:
                attr, x = _SCALARS[key][0], _number(text, key, where)
                if attr in set_by and values[attr] != x:
                    raise CfeConfigError(
                        f"{where}: {set_by[attr]}={values[attr]!r} and {key}={x!r} both set "
                        f"{attr} (aliases in the C reader, which keeps whichever comes last): "
                        f"keep one")
                values[attr], set_by[attr] = x, key
            elif key in _INTS:
                ints[key] = int(_number(text, key, where))
            elif key in _LISTS:
                lists[key] = [_number(v, key, where) for v in text.split(",")]
            elif key in _STRINGS:
                strings[key] = text
            else:
                warnings.warn(f"{where}: unknown key {key!r} ignored (the C model ignores it too)",
                              stacklevel=2)
        for flag, what in (("is_sft_coupled", "frozen-soil coupling"),
                           ("is_aet_rootzone", "root-zone AET")):
            if strings.get(flag) in _TRUE:
                raise CfeConfigError(f"{where}: {flag}=true ({what}) is not supported by dCFE")
        scheme = strings.get("surface_water_partitioning_scheme",
                             strings.get("surface_partitioning_scheme"))
        if scheme is None:
            raise CfeConfigError(f"{where}: required key 'surface_water_partitioning_scheme' missing")
        if scheme not in _PARTITIONING:
            raise CfeConfigError(f"{where}: surface_water_partitioning_scheme={scheme!r}: use one of "
                                 f"{sorted(_PARTITIONING)}")
        surface = strings.get("surface_runoff_scheme", "GIUH")
        if surface not in _SURFACE:
            raise CfeConfigError(f"{where}: surface_runoff_scheme={surface!r}: use one of {sorted(_SURFACE)}")
        options = CfeOptions(partitioning=_PARTITIONING[scheme], surface=_SURFACE[surface],
                             nash_surface_substeps=ints["nsubsteps_nash_surface"])
        required = {a for a, d in _SCALARS.values() if d is None} - set(_REQUIRED_XAJ) - {
            "k_nash_surface"}
        if options.partitioning == "xinanjiang":
            required |= set(_REQUIRED_XAJ)
        if options.surface == "nash_cascade":
            required.add("k_nash_surface")
        missing = sorted(required - set(values))
        if missing:
            names = [next(k for k, (a, _) in _SCALARS.items() if a == m) for m in missing]
            raise CfeConfigError(f"{where}: required key(s) missing: {', '.join(names)}")
        for attr, default in _SCALARS.values():
            values.setdefault(attr, 0.0 if default is None else default)
        giuh: list[float] = []
        if options.surface == "giuh":
            giuh = lists.get("giuh_ordinates", [])
            if not giuh:
                raise CfeConfigError(f"{where}: giuh_ordinates required with the GIUH scheme")
        lateral = lists.get("nash_storage_subsurface")
        if lateral is None or len(lateral) < 2:
            lateral = [0.0] * ints["N_nash_subsurface"]
        surface_store: list[float] = []
        if options.surface == "nash_cascade":
            n_surface = ints.get("N_nash_surface")
            if n_surface is None:
                raise CfeConfigError(f"{where}: N_nash_surface required with the NASH_CASCADE scheme")
            given = lists.get("nash_storage_surface")
            if given is None:
                raise CfeConfigError(f"{where}: nash_storage_surface required with the NASH_CASCADE scheme")
            if len(given) != n_surface:
                raise CfeConfigError(f"{where}: nash_storage_surface has {len(given)} values, "
                                     f"N_nash_surface={n_surface}")
            surface_store = given if n_surface > 2 else [0.0] * n_surface
            if n_surface <= 2 and any(given):
                warnings.warn(f"{where}: the C model ignores nash_storage_surface values for "
                              f"N_nash_surface <= 2 and starts empty; so do we", stacklevel=2)
        return cls(values=values, options=options, giuh_ordinates=giuh, nash_lateral=lateral,
                   nash_surface=surface_store, forcing_file=strings.get("forcing_file", "BMI"))

    # ------------------------------------------------------------------ model inputs
    def parameters(self, dtype: torch.dtype = torch.float64) -> CfeParameters:
        """Parameters of this catchment as a batch of one basin."""
        t = lambda v: torch.tensor([v], dtype=dtype)  # noqa: E731
        scalars = {a: t(self.values[a]) for a in {a for a, _ in _SCALARS.values()}
                   if a not in ("gw_storage", "soil_storage")}
        ordinates = self.giuh_ordinates or [0.0]
        return CfeParameters(giuh_ordinates=torch.tensor([ordinates], dtype=dtype), **scalars)

    def initial_state(self, params: CfeParameters) -> CfeState:
        """The state the C model starts from."""
        dtype = params.depth.dtype
        return initial_state(
            params, self.values["soil_storage"], self.values["gw_storage"],
            n_lateral=len(self.nash_lateral), n_surface=len(self.nash_surface),
            nash_lateral=torch.tensor([self.nash_lateral], dtype=dtype),
            nash_surface=torch.tensor([self.nash_surface], dtype=dtype).reshape(1, -1))

    # ------------------------------------------------------------------ writing
    def to_text(self) -> str:
        """The config in the C model's file format (readable by NOAA-OWP/cfe and by :meth:`read`)."""
        v = self.values
        fmt = lambda x: repr(float(x))  # noqa: E731  (shortest text that reads back exactly)
        lines = [
            f"forcing_file={self.forcing_file}",
            f"soil_params.depth={fmt(v['depth'])}[m]",
            f"soil_params.b={fmt(v['bb'])}[]",
            f"soil_params.satdk={fmt(v['satdk'])}[m s-1]",
            f"soil_params.satpsi={fmt(v['satpsi'])}[m]",
            f"soil_params.slop={fmt(v['slop'])}[m/m]",
            f"soil_params.smcmax={fmt(v['smcmax'])}[m/m]",
            f"soil_params.wltsmc={fmt(v['wltsmc'])}[m/m]",
            f"soil_params.expon={fmt(v['expon_soil'])}[]",
            f"soil_params.expon_secondary={fmt(v['expon_soil_secondary'])}[]",
            f"refkdt={fmt(v['refkdt'])}[]",
            f"max_gw_storage={fmt(v['max_gw_storage'])}[m]",
            f"Cgw={fmt(v['cgw'])}[m h-1]",
            f"expon={fmt(v['expon_gw'])}[]",
            f"gw_storage={fmt(v['gw_storage'])}[m/m]",
            f"alpha_fc={fmt(v['alpha_fc'])}[]",
            f"soil_storage={fmt(v['soil_storage'])}[m/m]",
            f"K_nash_subsurface={fmt(v['k_nash'])}[]",
            f"K_lf={fmt(v['k_lf'])}[]",
            f"nash_storage_subsurface={','.join(fmt(x) for x in self.nash_lateral)}",
            "num_timesteps=1",
            "verbosity=0",
        ]
        o = self.options
        if o.surface == "giuh":
            lines += ["surface_runoff_scheme=GIUH",
                      f"giuh_ordinates={','.join(fmt(x) for x in self.giuh_ordinates)}"]
        else:
            lines += ["surface_runoff_scheme=NASH_CASCADE",
                      f"N_nash_surface={len(self.nash_surface)}",
                      f"K_nash_surface={fmt(v['k_nash_surface'])}[h-1]",
                      f"nsubsteps_nash_surface={o.nash_surface_substeps}",
                      f"nash_storage_surface={','.join(fmt(x) for x in self.nash_surface)}[m]",
                      f"Kinf_nash_surface={fmt(v['k_infiltration'])}[h-1]",
                      f"retention_depth_nash_surface={fmt(v['retention_depth'])}[m]"]
        if o.partitioning == "schaake":
            lines.append("surface_water_partitioning_scheme=Schaake")
        else:
            lines += ["surface_water_partitioning_scheme=Xinanjiang",
                      f"a_Xinanjiang_inflection_point_parameter={fmt(v['xaj_a'])}",
                      f"b_Xinanjiang_shape_parameter={fmt(v['xaj_b'])}",
                      f"x_Xinanjiang_shape_parameter={fmt(v['xaj_x'])}",
                      f"urban_decimal_fraction={fmt(v['urban_fraction'])}"]
        return "\n".join(lines) + "\n"

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.to_text())
        return path


def _check_units(key: str, value: str, units: str, where: str) -> None:
    """Refuse ``key=value[units]`` whose units are not those the C model reads the key in."""
    allowed = _UNITS.get(_SCALARS[key][0], _DIMENSIONLESS)
    if " ".join(units.split()) not in allowed:
        raise CfeConfigError(f"{where}: {key}={value}[{units}]: the C model reads {key} in "
                             f"[{allowed[0]}] and ignores the brackets; give the value in "
                             f"[{allowed[0]}]")


def _number(text: str, key: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise CfeConfigError(f"{where}: {key}={text!r} is not a number") from None
