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

from pathlib import Path

from bmi_lgar.core import LgarCore
from bmi_lgar.lgar_config import LgarConfigError
from bmi_lgar.parameters import LayerSoil, LgarParameterError, LgarParameters
from bmi_lgar.soil import SoilTableError
from bmi_lgar.texture import parameters_from_attributes
from delta_core.bmi.adapter import NgenBmi
from delta_core.bmi.base import BmiError
from delta_core.bmi.hourly import FLAT_TEMPERATURE_KEYS

#: ``bundle: shipped``: the package's dLGAR bundle (:attr:`ModelSpec.default_bundle`).
SHIPPED = "shipped"
#: Keys that give the parameter set (exactly one).
PARAMETER_SOURCES = ("lgar_config", "attributes", "soil_layers")


class BmiLGAR(NgenBmi):
    """dLGAR for the NextGen framework: one catchment, hourly host steps.

    Inputs: precipitation every hour, and PET (``pet_source: input``, default, as LGAR-C) or air
    temperature (``pet_source: hargreaves``: PET from the trailing 24 hours of temperature,
    spread over the day by sine weights); air temperature also whenever the snow routine runs
    (``snow``: default on with a bundle, off otherwise). The variables are
    :data:`bmi_lgar.model.VARIABLES`.
    """

    _component_name = "dLGAR: Layered Green-Ampt with Redistribution (NextGen BMI)"
    MODEL = "dlgar"
    HOST_STEPS = (3600,)
    REQUIRED = ("latitude", "area_km2", "start_time")
    BACKENDS = ("cpp", "python")
    KERNEL = "bmi_lgar.kernel"
    HARGREAVES_FROM = "the trailing 24 h of air temperature, which is then an input"
    PET_SOURCE_DEFAULT = "hargreaves with a bundle, input otherwise (as LGAR-C)"
    CONDITIONS = {"snow": "`snow: true`",
                  "temperature": "`pet_source: hargreaves` or `snow: true`"}
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
        self._backend = self._choose_backend(cfg, model)
        core = LgarCore(model, None if self._pet_input else self._lat, backend=self._backend,
                        snow=self._snow)
        core.set_flat_policy(self._flat_temperature(cfg))
        return core

    def _pet_source_default(self, cfg: dict) -> str:
        """Hargreaves with a bundle (as trained), PET an input otherwise (as LGAR-C)."""
        return "hargreaves" if self._has_bundle else "input"

    def _conditions(self) -> set[str]:
        """Also ``snow`` (the snow routine runs) and ``temperature`` (air temperature is an
        input: for the snow routine or Hargreaves PET)."""
        snow = self._snow is not None
        return super()._conditions() | {c for c, on in (
            ("snow", snow), ("temperature", snow or not self._pet_input)) if on}

    def _state_signature(self) -> dict:
        return {**super()._state_signature(), "backend": self._backend,
                "snow": self._snow is not None}


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
