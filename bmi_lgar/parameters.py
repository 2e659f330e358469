"""The parameter set of one LGAR column, independent of where it comes from.

:class:`LgarParameters` is what :class:`bmi_lgar.core.LgarCore` runs with. It is built from an
LGAR-C config file (:meth:`LgarParameters.from_lgar_config`), from CAMELS attributes through the
soil texture table (:func:`bmi_lgar.texture.parameters_from_attributes`), or, later, from the
δ model's learned soil parameters (per layer ``alpha, n, Ks, theta_e, theta_r``: build
:class:`LayerSoil` rows with :meth:`LayerSoil.explicit`). The timing is not part of it: the core
always steps one hour with one fixed 3600 s substep.

Units are LGAR-C's: cm, hours, cm/h; van Genuchten alpha in 1/cm.
"""
from __future__ import annotations

import hashlib
import json
import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from bmi_lgar.lgar_config import MAX_NUM_SOIL_LAYERS, LgarConfig, read_lgar_config
from bmi_lgar.soil import SoilTableError, SoilType, make_soil, read_soil_table

#: The soil table shipped with the package (a copy of LGAR-C's ``vG_default_params.dat``).
DEFAULT_SOIL_TABLE = Path(__file__).resolve().parent / "data" / "vG_default_params.dat"
#: LGAR-C's example heads [cm] of the AET curve (wilting point, field capacity).
WILTING_POINT_PSI_CM = 15495.0
FIELD_CAPACITY_PSI_CM = 340.9
#: Substep and forcing step of the core [h].
STEP_H = 1.0


class LgarParameterError(ValueError):
    """A parameter set LGAR cannot run with (names the parameter and the valid values)."""


@dataclass(frozen=True)
class LayerSoil:
    """Van Genuchten-Mualem parameters of one soil layer.

    Attributes
    ----------
    name : str
        Texture name (or a label such as ``"learned"``).
    theta_r, theta_e : float
        Residual and saturated water contents [-].
    alpha : float
        Van Genuchten alpha [1/cm].
    n : float
        Van Genuchten n [-] (> 1).
    ks : float
        Saturated hydraulic conductivity [cm/h].
    """

    name: str
    theta_r: float
    theta_e: float
    alpha: float
    n: float
    ks: float

    @classmethod
    def explicit(cls, alpha: float, n: float, ks: float, theta_e: float, theta_r: float,
                 name: str = "explicit") -> "LayerSoil":
        """A layer from its parameters (alpha [1/cm], n, Ks [cm/h], theta_e, theta_r)."""
        return cls(name, float(theta_r), float(theta_e), float(alpha), float(n), float(ks))

    @classmethod
    def from_soil(cls, soil: SoilType) -> "LayerSoil":
        """The layer of a soil table row."""
        return cls(soil.name, soil.theta_r, soil.theta_e, soil.alpha, soil.n, soil.ks)

    @classmethod
    def from_table(cls, soil: str | int, table: str | Path | None = None) -> "LayerSoil":
        """The layer of soil ``soil`` of a soil table: its name (case-insensitive, e.g.
        ``"Sandy-loam"``) or 1-based row number (LGAR-C's soil type).

        Raises
        ------
        LgarParameterError
            Unknown name or row; the message lists the valid ones.
        """
        soils = read_soil_table(table or DEFAULT_SOIL_TABLE, WILTING_POINT_PSI_CM)
        valid = ", ".join(f"{k}={s.name}" for k, s in enumerate(soils, start=1))
        if isinstance(soil, bool):
            raise LgarParameterError(f"soil type {soil!r}: give a name or row; valid: {valid}")
        if isinstance(soil, int) or (isinstance(soil, float) and soil == int(soil)):
            if 1 <= int(soil) <= len(soils):
                return cls.from_soil(soils[int(soil) - 1])
            raise LgarParameterError(f"soil type {soil} is not in the soil table; valid types: "
                                     f"{valid}")
        by_name = {s.name.lower(): s for s in soils}
        found = by_name.get(str(soil).strip().lower())
        if found is None:
            raise LgarParameterError(f"unknown soil type {soil!r}; valid types: {valid}")
        return cls.from_soil(found)

    def soil_type(self, wilting_point_psi_cm: float) -> SoilType:
        """The :class:`SoilType` (with LGAR-C's derived Brooks-Corey values)."""
        try:
            return make_soil(self.name, self.theta_r, self.theta_e, self.alpha, self.n, self.ks,
                             wilting_point_psi_cm)
        except SoilTableError as exc:
            raise LgarParameterError(str(exc)) from None


@dataclass(frozen=True)
class Reservoirs:
    """LGAR-C's conceptual reservoirs (``frac_to_cr = 0``: none) and free drainage.

    Attributes
    ----------
    a, b, frac_to_cr : float
        Fast reservoir ``Q = a S^b`` [cm/h, S in cm] and the share of rain and ponded water sent to
        the reservoirs when the last substep made runoff [-].
    a_slow, b_slow, frac_slow : float
        Slow reservoir and the share of the reservoir inflow it takes [-].
    spf_factor : float
        Top front above ``spf_factor x theta_e`` triggers preferential flow [-].
    free_drainage : bool
        Free-drainage lower boundary (else no flow through the bottom).
    free_drainage_to_cr : bool
        Free drainage feeds the reservoirs (needs ``free_drainage``).
    """

    a: float = 0.0
    b: float = 0.0
    frac_to_cr: float = 0.0
    a_slow: float = 0.0
    b_slow: float = 0.0
    frac_slow: float = 0.0
    spf_factor: float = 0.98
    free_drainage: bool = False
    free_drainage_to_cr: bool = False


@dataclass(frozen=True)
class LgarParameters:
    """Everything that defines one LGAR column (see the module docstring).

    Attributes
    ----------
    layers : tuple of LayerSoil
        Soil of each layer, surface first (1 to 4 layers).
    thickness_cm : tuple of float
        Thickness of each layer [cm].
    ponded_depth_max_cm : float
        Water held on the surface before runoff [cm].
    giuh_ordinates : tuple of float
        GIUH ordinates per hour [-] (sum 1).
    initial_psi_cm : float
        Uniform initial capillary head [cm].
    wilting_point_psi_cm, field_capacity_psi_cm : float
        Heads of the AET curve [cm].
    use_closed_form_g : bool
        Brooks-Corey closed form of the capillary drive (else LGAR-C's numerical integral).
    reservoirs : Reservoirs
        Conceptual reservoirs and lower boundary.
    mbal_tol : float
        Local mass-balance error [cm] above which a step fails (LGAR-C's abort).
    source : str
        Where the set came from (documentation only).
    """

    layers: tuple[LayerSoil, ...]
    thickness_cm: tuple[float, ...]
    ponded_depth_max_cm: float = 2.0
    giuh_ordinates: tuple[float, ...] = (0.06, 0.51, 0.28, 0.12, 0.03)
    initial_psi_cm: float = 2000.0
    wilting_point_psi_cm: float = WILTING_POINT_PSI_CM
    field_capacity_psi_cm: float = FIELD_CAPACITY_PSI_CM
    use_closed_form_g: bool = True
    reservoirs: Reservoirs = field(default_factory=Reservoirs)
    mbal_tol: float = 10.0
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        object.__setattr__(self, "thickness_cm", tuple(float(t) for t in self.thickness_cm))
        object.__setattr__(self, "giuh_ordinates", tuple(float(g) for g in self.giuh_ordinates))
        self.check()

    # -- checks ------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`LgarParameterError` naming the first invalid parameter."""
        n = len(self.layers)
        if not 1 <= n <= MAX_NUM_SOIL_LAYERS:
            raise LgarParameterError(f"{n} soil layers; LGAR holds 1 to {MAX_NUM_SOIL_LAYERS}")
        if len(self.thickness_cm) != n:
            raise LgarParameterError(f"{n} layer soils but {len(self.thickness_cm)} layer "
                                     f"thicknesses {list(self.thickness_cm)}: give one each")
        if not all(math.isfinite(t) and t > 0 for t in self.thickness_cm):
            raise LgarParameterError(f"layer thicknesses must be positive and finite [cm], got "
                                     f"{list(self.thickness_cm)}")
        for layer in self.layers:
            layer.soil_type(self.wilting_point_psi_cm)  # vG ranges
        g = self.giuh_ordinates
        if not g or not all(math.isfinite(x) and x >= 0 for x in g) or abs(sum(g) - 1) > 1e-6:
            raise LgarParameterError(f"giuh_ordinates must be non-negative and sum to 1, got "
                                     f"{list(g)} (sum {sum(g):.6g})")
        if not (math.isfinite(self.ponded_depth_max_cm) and self.ponded_depth_max_cm >= 0):
            raise LgarParameterError(f"ponded_depth_max must be >= 0 cm, got "
                                     f"{self.ponded_depth_max_cm}")
        if not self.initial_psi_cm > 0:
            raise LgarParameterError(f"initial_psi must be > 0 cm, got {self.initial_psi_cm}")
        r = self.reservoirs
        if not (0 <= r.frac_to_cr <= 1 and 0 <= r.frac_slow <= 1):
            raise LgarParameterError(f"frac_to_cr and frac_slow must be in [0, 1], got "
                                     f"{r.frac_to_cr}, {r.frac_slow}")
        if r.free_drainage_to_cr and not r.free_drainage:
            raise LgarParameterError("free_drainage_to_cr needs free_drainage")

    # -- derived -----------------------------------------------------------------------------
    @property
    def soil_depth_cm(self) -> float:
        """Depth of the column [cm]."""
        return sum(self.thickness_cm)

    def to_config(self) -> LgarConfig:
        """The :class:`LgarConfig` of an hourly run with a fixed 3600 s substep (no end)."""
        soils = [layer.soil_type(self.wilting_point_psi_cm) for layer in self.layers]
        r = self.reservoirs
        return LgarConfig(
            layer_thickness_cm=list(self.thickness_cm),
            layer_soil_type=list(range(1, len(soils) + 1)), soils=soils,
            initial_psi_cm=self.initial_psi_cm, timestep_h=STEP_H, forcing_resolution_h=STEP_H,
            endtime_s=math.inf, wilting_point_psi_cm=self.wilting_point_psi_cm,
            field_capacity_psi_cm=self.field_capacity_psi_cm,
            giuh_ordinates=list(self.giuh_ordinates),
            ponded_depth_max_cm=self.ponded_depth_max_cm,
            use_closed_form_g=self.use_closed_form_g, free_drainage_enabled=r.free_drainage,
            free_drainage_to_cr=r.free_drainage_to_cr, a=r.a, b=r.b, frac_to_cr=r.frac_to_cr,
            a_slow=r.a_slow, b_slow=r.b_slow, frac_slow=r.frac_slow, spf_factor=r.spf_factor,
            mbal_tol=self.mbal_tol)

    def to_dict(self) -> dict:
        """Plain data (JSON-able)."""
        return asdict(self)

    def checksum(self) -> str:
        """sha256 of the parameters (identifies them in state files; ``source`` left out)."""
        d = self.to_dict()
        d.pop("source")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def with_layers(self, layers) -> "LgarParameters":
        """The same set with other layer soils (e.g. the δ model's learned ones)."""
        return replace(self, layers=tuple(layers))

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_lgar_config(cls, config: LgarConfig | str | Path,
                         base_dir: str | Path | None = None) -> "LgarParameters":
        """The parameters of an LGAR-C config (a path is read with
        :func:`bmi_lgar.lgar_config.read_lgar_config`). Its timing (``timestep``,
        ``forcing_resolution``, ``endtime``, ``adaptive_timestep``, ``allow_flux_caching``) is
        not a parameter: the core steps hourly with a fixed 3600 s substep, and a config asking
        for other timing gets a warning."""
        where = "LgarConfig"
        if not isinstance(config, LgarConfig):
            where = str(config)
            config = read_lgar_config(config, base_dir)
        c = config
        if (c.timestep_h != STEP_H or c.forcing_resolution_h != STEP_H or c.adaptive_timestep
                or c.allow_flux_caching):
            warnings.warn(f"{where}: timestep {c.timestep_h * 3600:g} s, forcing_resolution "
                          f"{c.forcing_resolution_h * 3600:g} s, adaptive_timestep "
                          f"{c.adaptive_timestep}, allow_flux_caching {c.allow_flux_caching}: "
                          f"the dLGAR core runs hourly with a fixed 3600 s substep and no flux "
                          f"caching instead", stacklevel=2)
        res = Reservoirs(c.a, c.b, c.frac_to_cr, c.a_slow, c.b_slow, c.frac_slow, c.spf_factor,
                         c.free_drainage_enabled, c.free_drainage_to_cr)
        return cls(layers=tuple(LayerSoil.from_soil(s) for s in c.layer_soils),
                   thickness_cm=tuple(c.layer_thickness_cm),
                   ponded_depth_max_cm=c.ponded_depth_max_cm,
                   giuh_ordinates=tuple(c.giuh_ordinates), initial_psi_cm=c.initial_psi_cm,
                   wilting_point_psi_cm=c.wilting_point_psi_cm,
                   field_capacity_psi_cm=c.field_capacity_psi_cm,
                   use_closed_form_g=c.use_closed_form_g, reservoirs=res, mbal_tol=c.mbal_tol,
                   source=f"LGAR-C config {where}")
