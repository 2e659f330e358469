"""NextGen BMI component of dLGAR (one catchment per instance): the generic
:class:`~delta_core.bmi.adapter.NgenBmi` bound to the hourly :class:`~bmi_lgar.core.LgarCore`.

Hourly only: each ``update`` is one LGAR forcing step of one hour with one 3600 s substep. The
parameters come from an LGAR-C config file (``lgar_config``), from CAMELS attributes through the
texture table (``attributes``, :mod:`bmi_lgar.texture`) or from explicit layers
(``soil_layers`` + ``layer_thickness_cm``), or from a dLGAR weight bundle (the network's
corrections of the texture-table parameters, learned GIUH, and the bundle's degree-day snow ahead
of LGAR). See ``bmi_lgar/BMI.md``.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from bmi_lgar.core import LgarCore
from bmi_lgar.lgar_config import LgarConfigError
from bmi_lgar.parameters import LayerSoil, LgarParameterError, LgarParameters
from bmi_lgar.soil import SoilTableError
from bmi_lgar.texture import parameters_from_attributes
from delta_core.bmi.adapter import RATE_UNITS, InputVar, NgenBmi, OutputVar
from delta_core.bmi.base import BmiError
from delta_core.bmi.hourly import FLAT_TEMPERATURE_KEYS
from delta_core.ngen.crosswalk import (BASEFLOW, ET, MELT, PET, PRECIP, RUNOFF_DEPTH,
                                      RUNOFF_FLUX, SOIL, SURFACE_FLOW, SWE, T_PLAUSIBLE, TEMP)

GIUH_RUNOFF = "land_surface_water__routed_runoff_volume_flux"
INFILTRATION = "soil_surface_water__infiltration_volume_flux"
PERCOLATION = "soil_water_sat-zone_top__recharge_volume_flux"
PONDED = "land_surface_water__depth"
RESERVOIR = "groundwater__depth"
N_FRONTS = "soil_water_wetting-front__count"

#: The output variables: (BMI name, units ("rate": per host step), description, core output or
#: derived runoff). PET is an output only when it is derived (``pet_source: hargreaves``).
OUTPUT_TABLE: tuple[tuple[str, str, str, str], ...] = (
    (RUNOFF_DEPTH, "m", "runoff depth at the outlet over the hour: LGAR total discharge (GIUH "
     "of surface runoff and reservoir outflow)", "runoff_depth"),
    (RUNOFF_FLUX, "m3 s-1", "runoff volume flux at the catchment outlet (depth x area / step)",
     "runoff_flux"),
    (SURFACE_FLOW, "rate", "surface runoff made in the hour, before GIUH routing",
     "surface_runoff"),
    (GIUH_RUNOFF, "rate", "GIUH runoff (= total discharge)", "giuh_runoff"),
    (INFILTRATION, "rate", "infiltration into the soil", "infiltration"),
    (PERCOLATION, "rate", "percolation through the bottom of the soil column", "percolation"),
    (ET, "rate", "actual evapotranspiration", "aet"),
    (BASEFLOW, "rate", "conceptual reservoir outflow to the stream (before GIUH routing)",
     "reservoir_discharge"),
    (SOIL, "mm", "water in the soil column", "soil_storage"),
    (PONDED, "mm", "water ponded on the surface", "ponded"),
    (RESERVOIR, "mm", "storage of the conceptual reservoirs (fast + slow)", "reservoir_storage"),
    (N_FRONTS, "1", "number of wetting fronts in the soil column", "n_fronts"),
)

#: ``bundle: shipped``: the package's dLGAR bundle (:attr:`ModelSpec.default_bundle`).
SHIPPED = "shipped"
#: Keys that give the parameter set (exactly one).
PARAMETER_SOURCES = ("lgar_config", "attributes", "soil_layers")


class BmiLGAR(NgenBmi):
    """dLGAR for the NextGen framework: one catchment, hourly host steps.

    Inputs: precipitation every hour, and PET (``pet_source: input``, default, as LGAR-C) or air
    temperature (``pet_source: hargreaves``: PET from the trailing 24 hours of temperature,
    spread over the day by sine weights); air temperature also whenever the snow routine runs
    (``snow``: default on with a bundle, off otherwise).
    """

    _component_name = "dLGAR: Layered Green-Ampt with Redistribution (NextGen BMI)"
    MODEL = "dlgar"
    HOST_STEPS = (3600,)
    REQUIRED = ("latitude", "area_km2", "start_time")
    BACKENDS = ("cpp", "python")
    EXTRA_KEYS = {
        "bundle": "dLGAR weight bundle: a path, or 'shipped' for the package's bundle; without "
                  "it LGAR runs the parameters of lgar_config, attributes (texture table) or "
                  "soil_layers",
        "lgar_config": "LGAR-C config file giving the parameters (its timing is replaced by "
                       "hourly steps with one 3600 s substep)",
        "soil_layers": "explicit layers, surface first: each a soil name or row of the soil "
                       "table, or a mapping {alpha [1/cm], n, ks [cm/h], theta_e, theta_r}",
        "layer_thickness_cm": "with soil_layers: thickness of each layer [cm]",
        "soil_depth_cm": "optional check: the layer thicknesses must add up to it [cm]",
        "soil_table": "soil table for soil names (default: the shipped vG_default_params.dat)",
        "ponded_depth_max_cm": "override: water held on the surface before runoff [cm]",
        "giuh_ordinates": "override: GIUH ordinates per hour (sum 1)",
        "pet_source": "input (default: PET is an input variable) or hargreaves (PET from the "
                      "trailing 24 h of air temperature, which is then the input)",
        "snow": "true/false: degree-day snow ahead of LGAR (air temperature becomes an input); "
                "default true with a bundle (its trained constants), false otherwise (then the "
                "constants of dLGAR's PhysicsConfig)",
        **FLAT_TEMPERATURE_KEYS,
    }
    SPINUP_COLUMNS = {"prcp_mm_h": "prcp", "pet_mm_h": "pet", "tmean_c": "tmean"}

    # -- parameters --------------------------------------------------------------------------
    def _set_threads(self, threads: int) -> None:
        """Nothing to set: LGAR steps one catchment on one thread (either backend), and a
        bundle's network runs once, at initialize."""

    def _load_model(self, cfg: dict) -> tuple:
        self._has_bundle = cfg.get("bundle") is not None
        if cfg.get("soil_table") is not None and (self._has_bundle or cfg.get("lgar_config")):
            raise BmiError(
                f"soil_table {cfg['soil_table']} is not used with "
                + (f"lgar_config: the LGAR-C config names its own table (soil_params_file=...); "
                   f"drop soil_table or set soil_params_file in {cfg['lgar_config']}"
                   if not self._has_bundle else "a bundle (its texture-table prior reads the "
                   "shipped table): drop soil_table"))
        self._snow = None
        if self._has_bundle:
            return self._bundle_parameters(cfg)
        if _flag(cfg, "snow", False):
            from bmi_lgar.model import PhysicsConfig

            self._snow = PhysicsConfig().snow()
        try:
            params = self._parameter_set(cfg)
        except BmiError:
            raise
        except (LgarParameterError, LgarConfigError, SoilTableError, TypeError,
                ValueError) as exc:
            raise BmiError(f"dLGAR parameters: {exc}") from None
        self._bundle_path = params.source
        self._bundle_checksum = params.checksum()
        return params, None, None

    def _bundle_parameters(self, cfg: dict) -> tuple:
        """The parameter set the bundle's network gives for the catchment's ``attributes``
        (encoded for the network; the raw texture attributes for the texture-table prior)."""
        import torch

        others = [k for k in PARAMETER_SOURCES if k != "attributes" and cfg.get(k) is not None]
        if others:
            raise BmiError(f"bundle gives the parameters: drop {others} (or drop bundle)")
        if cfg.get("attributes") is None:
            raise BmiError("missing required key(s) ['attributes']: a bundle needs the "
                           "catchment attributes")
        model, norm, _ = self._load_bundle(None if cfg["bundle"] == SHIPPED else cfg["bundle"])
        if _flag(cfg, "snow", True):
            self._snow = model.config.snow()
        attrs = cfg["attributes"]
        x_attr = self._encode_attributes(attrs, norm)
        names = tuple(getattr(model, "raw_attributes", ()))
        lacking = [n for n in names if attrs.get(n) is None]
        if lacking:
            raise BmiError(f"attributes lacks {lacking}: the dLGAR bundle's texture-table prior "
                           f"needs the raw attributes {list(names)}")
        try:
            raw = torch.tensor([[float(attrs[n]) for n in names]], dtype=torch.float64)
            params = model.lgar_parameters(torch.as_tensor(x_attr, dtype=torch.float64)[None],
                                           raw)[0]
        except (LgarParameterError, TypeError, ValueError) as exc:
            raise BmiError(f"dLGAR parameters from the bundle: {exc}") from None
        return _with_overrides(params, cfg), None, None

    def _parameter_set(self, cfg: dict) -> LgarParameters:
        """The :class:`LgarParameters` of this catchment from the configuration."""
        given = [k for k in PARAMETER_SOURCES if cfg.get(k) is not None]
        if len(given) != 1:
            raise BmiError(f"give exactly one of {list(PARAMETER_SOURCES)} for the LGAR "
                           f"parameters, got {given or 'none'}")
        table = self._path(cfg["soil_table"]) if cfg.get("soil_table") else None
        if given[0] == "lgar_config":
            params = LgarParameters.from_lgar_config(self._path(cfg["lgar_config"]))
        elif given[0] == "attributes":
            if not isinstance(cfg["attributes"], dict):
                raise BmiError(f"attributes must be a mapping {{name: value}}, got "
                               f"{cfg['attributes']!r}")
            params = parameters_from_attributes(cfg["attributes"], table)
        else:
            params = _explicit_layers(cfg, table)
        return _with_overrides(params, cfg)

    def _spinup(self, path: Path) -> None:
        """The adapter's spin-up; an hour the core cannot step (no PET and no temperature)
        names the file."""
        try:
            super()._spinup(path)
        except BmiError:
            raise
        except ValueError as exc:
            need = ["prcp_mm_h"] + (["pet_mm_h"] if self._pet_input else []) + (
                ["tmean_c"] if self._snow is not None or not self._pet_input else [])
            raise BmiError(f"spinup_forcing {path}: {exc} (columns needed: {need}, for "
                           f"pet_source {'input' if self._pet_input else 'hargreaves'}, snow "
                           f"{'on' if self._snow is not None else 'off'})") from None

    def _make_core(self, model, norm, x_attr, cfg) -> LgarCore:
        pet_source = cfg.get("pet_source", "hargreaves" if self._has_bundle else "input")
        if pet_source not in ("input", "hargreaves"):
            raise BmiError(f"pet_source must be 'input' or 'hargreaves', got {pet_source!r}")
        self._pet_input = pet_source == "input"
        self._backend = self._choose_backend(cfg.get("backend"))
        core = LgarCore(model, None if self._pet_input else self._lat, backend=self._backend,
                        snow=self._snow)
        core.set_flat_policy(self._flat_temperature(cfg))
        return core

    @staticmethod
    def _choose_backend(backend: str | None) -> str:
        """The configured engine; without the key, cpp where the kernel is built (else python,
        with a warning)."""
        from bmi_lgar import kernel

        if backend == "cpp" and not kernel.cpp_available():
            raise BmiError("backend: cpp needs the compiled LGAR kernel bmi_lgar._core, which "
                           "could not be imported (reinstall with a C++ compiler, or set "
                           "backend: python)")
        if backend is not None:
            return backend
        if not kernel.cpp_available():
            warnings.warn("the compiled LGAR kernel bmi_lgar._core is not available: dLGAR BMI "
                          "falls back to backend python (slower)", stacklevel=4)
            return "python"
        return "cpp"

    def _state_signature(self) -> dict:
        return {"pet_input": self._pet_input, "backend": self._backend,
                "snow": self._snow is not None}

    # -- variables ---------------------------------------------------------------------------
    def _inputs(self) -> list[InputVar]:
        rate = RATE_UNITS[int(self._time_step)]
        snow = self._snow is not None
        out = [InputVar(PRECIP, rate, "precipitation rate (rain and snow: the degree-day routine "
                        "splits it by temperature)" if snow else
                        "precipitation rate (liquid water reaching the soil)",
                        (("prcp", "sum"),), min_value=0.0)]
        if self._pet_input:
            out.append(InputVar(PET, rate, "potential evapotranspiration", (("pet", "sum"),),
                                min_value=0.0))
        if snow or not self._pet_input:
            uses = " and ".join(x for x, on in (("snow", snow),
                                                ("Hargreaves PET", not self._pet_input)) if on)
            out.append(InputVar(TEMP, "degC", f"air temperature ({uses})",
                                (("tmean", "mean"),), plausible=T_PLAUSIBLE))
        return out

    def _outputs(self) -> list[OutputVar]:
        rate = RATE_UNITS[int(self._time_step)]
        out = [OutputVar(name, rate if units == "rate" else units, desc, source)
               for name, units, desc, source in OUTPUT_TABLE]
        if not self._pet_input:
            out.append(OutputVar(PET, rate, "Hargreaves potential evapotranspiration", "pet"))
        if self._snow is not None:
            out += [OutputVar(MELT, rate, "snowmelt", "melt"),
                    OutputVar(SWE, "mm", "snow water equivalent (snowpack + liquid water)",
                              "swe")]
        return out


def _flag(cfg: dict, key: str, default: bool) -> bool:
    """A true/false key of the configuration."""
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise BmiError(f"{key} must be true or false, got {value!r}")
    return value


def _explicit_layers(cfg: dict, table: Path | None) -> LgarParameters:
    """Parameters from ``soil_layers`` and ``layer_thickness_cm``."""
    layers, thickness = cfg["soil_layers"], cfg.get("layer_thickness_cm")
    if not isinstance(layers, list) or not layers:
        raise BmiError(f"soil_layers must be a list of soils, got {layers!r}")
    if not isinstance(thickness, list) or len(thickness) != len(layers):
        raise BmiError(f"layer_thickness_cm must list one thickness [cm] per layer of "
                       f"soil_layers ({len(layers)}), got {thickness!r}")
    try:
        thickness = [float(t) for t in thickness]
    except (TypeError, ValueError):
        raise BmiError(f"layer_thickness_cm must be numbers [cm], got {thickness!r}") from None
    depth = cfg.get("soil_depth_cm")
    if depth is not None and abs(sum(thickness) - float(depth)) > 1e-9 * max(1.0, abs(depth)):
        raise BmiError(f"layer_thickness_cm {thickness} adds up to {sum(thickness):g} cm, not "
                       f"soil_depth_cm {depth} cm")
    soils = [_layer(x, i, table) for i, x in enumerate(layers, start=1)]
    return LgarParameters(layers=tuple(soils), thickness_cm=tuple(thickness),
                          source="explicit soil_layers")


def _layer(x, i: int, table: Path | None) -> LayerSoil:
    """One entry of ``soil_layers``."""
    if isinstance(x, dict):
        keys = ("alpha", "n", "ks", "theta_e", "theta_r")
        lacking = [k for k in keys if k not in x]
        extra = sorted(set(x) - set(keys) - {"name"})
        if lacking or extra:
            raise BmiError(f"soil_layers[{i}]: a mapping needs exactly {list(keys)} (alpha "
                           f"[1/cm], n, ks [cm/h], theta_e, theta_r; optional name); missing "
                           f"{lacking}, unknown {extra}")
        try:
            return LayerSoil.explicit(*(float(x[k]) for k in keys),
                                      name=str(x.get("name", f"layer {i}")))
        except (TypeError, ValueError):
            raise BmiError(f"soil_layers[{i}]: parameters must be numbers, got {x}") from None
    return LayerSoil.from_table(x, table)


def _with_overrides(params: LgarParameters, cfg: dict) -> LgarParameters:
    """Apply ``ponded_depth_max_cm`` and ``giuh_ordinates`` of the configuration."""
    import dataclasses

    changes = {}
    if cfg.get("ponded_depth_max_cm") is not None:
        changes["ponded_depth_max_cm"] = float(cfg["ponded_depth_max_cm"])
    if cfg.get("giuh_ordinates") is not None:
        g = cfg["giuh_ordinates"]
        if not isinstance(g, list):
            raise BmiError(f"giuh_ordinates must be a list of numbers, got {g!r}")
        changes["giuh_ordinates"] = tuple(float(v) for v in g)
    return dataclasses.replace(params, **changes) if changes else params
