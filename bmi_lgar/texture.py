"""CAMELS attributes -> an LGAR parameter set through the USDA texture triangle (no learning).

The recipe (the texture-table baseline of dLGAR):

1. **Texture fractions.** ``sand_frac``, ``silt_frac``, ``clay_frac`` [%] of the CAMELS attributes
   (STATSGO). In CAMELS they do not add up to 100 (the rest is organic matter, water, "other":
   the three sum to 31-100.5 % over the 671 basins), so they are rescaled to sum to 100 before
   classing. Missing, negative or all-zero fractions, or a sum above 103 %, are an error.
2. **USDA texture class** (:func:`usda_texture_class`), from the class definitions of the USDA
   Soil Survey Manual (Soil Science Division Staff 2017, table 3-4; the rules of the NRCS
   texture triangle), with S, Si, C the sand, silt and clay percentages:

   =================  =========================================================================
   sand               S > 85 and Si + 1.5 C < 15
   loamy sand         Si + 1.5 C >= 15 and Si + 2 C < 30
   sandy loam         (7 <= C < 20 and S > 52 and Si + 2 C >= 30) or
                      (C < 7 and Si < 50 and Si + 2 C >= 30)
   loam               7 <= C < 27 and 28 <= Si < 50 and S <= 52
   silt loam          (Si >= 50 and 12 <= C < 27) or (50 <= Si < 80 and C < 12)
   silt               Si >= 80 and C < 12
   sandy clay loam    20 <= C < 35 and Si < 28 and S > 45
   clay loam          27 <= C < 40 and 20 < S <= 45
   silty clay loam    27 <= C < 40 and S <= 20
   sandy clay         C >= 35 and S > 45
   silty clay         C >= 40 and Si >= 40
   clay               C >= 40 and S <= 45 and Si < 40
   =================  =========================================================================

   Every point of the triangle falls in exactly one class (a point on a boundary line belongs to
   the class whose inequality includes it, as written above).
3. **Soil parameters**: the class's row of LGAR-C's ``vG_default_params.dat`` (shipped as
   ``bmi_lgar/data/vG_default_params.dat``: theta_r, theta_e, alpha [1/cm], n, Ks [cm/h]), the
   same soil in every layer (CAMELS has one texture per basin; layering is for the δ model's
   per-layer parameters later).
4. **Layers** from ``soil_depth_statsgo`` [m]: three layers of 10 cm, 30 cm and the rest. The
   column is at least :data:`MIN_SOIL_DEPTH_CM` (50 cm, so the third layer has >= 10 cm; CAMELS
   depths are 40-150 cm and 2 of 671 basins are below 42 cm).
5. **Defaults** of the Phillipsburg reference configurations of LGAR-C (the field case of La
   Follette et al. 2023): max ponded depth 2 cm, GIUH ordinates 0.06, 0.51, 0.28, 0.12, 0.03
   (per hour), initial head 2000 cm, closed-form capillary drive; and the conceptual reservoirs
   with free drainage of its ``Phillipsburg_CR`` configuration (:data:`RESERVOIRS`: fast
   ``Q = 0.002 S^2``, slow ``Q = 0.0002 S^1.5`` taking 30 %, 20 % of rain to the reservoirs after
   runoff, spf_factor 0.9, free drainage into the reservoirs). Without the reservoirs LGAR has no
   baseflow: the column (no-flow bottom) makes streamflow only from infiltration excess, which
   hourly rain spread from daily totals hardly ever gives (pass ``reservoirs=Reservoirs()`` for
   that variant).
"""
from __future__ import annotations

import math
from collections.abc import Mapping

from bmi_lgar.parameters import LayerSoil, LgarParameterError, LgarParameters, Reservoirs

#: USDA classes -> row name in vG_default_params.dat.
TABLE_NAMES = {
    "clay": "Clay", "clay loam": "Clay-loam", "loam": "Loam", "loamy sand": "Loamy-sand",
    "sand": "Sand", "sandy clay": "Sandy-clay", "sandy clay loam": "Sandy-clay loam",
    "sandy loam": "Sandy-loam", "silt": "Silt", "silty clay": "Silty-clay",
    "silty clay loam": "Silty-clay loam", "silt loam": "Silt-loam",
}
#: The 12 USDA texture classes.
USDA_CLASSES = tuple(TABLE_NAMES)
#: Layer thicknesses [cm] above the last layer, which takes the rest.
UPPER_LAYERS_CM = (10.0, 30.0)
#: Least column depth [cm] (the last layer >= 10 cm).
MIN_SOIL_DEPTH_CM = 50.0
#: Defaults (Phillipsburg reference configuration).
PONDED_DEPTH_MAX_CM = 2.0
GIUH_ORDINATES = (0.06, 0.51, 0.28, 0.12, 0.03)
INITIAL_PSI_CM = 2000.0
RESERVOIRS = Reservoirs(a=0.002, b=2.0, frac_to_cr=0.2, a_slow=0.0002, b_slow=1.5, frac_slow=0.3,
                        spf_factor=0.9, free_drainage=True, free_drainage_to_cr=True)
#: CAMELS attributes this module reads.
ATTRIBUTES = ("sand_frac", "silt_frac", "clay_frac", "soil_depth_statsgo")


def _rules(s: float, si: float, c: float) -> dict[str, bool]:
    """Whether (sand, silt, clay) [%] satisfies each class's definition (module docstring)."""
    return {
        "sand": s > 85 and si + 1.5 * c < 15,
        "loamy sand": si + 1.5 * c >= 15 and si + 2 * c < 30,
        "sandy loam": (7 <= c < 20 and s > 52 and si + 2 * c >= 30)
        or (c < 7 and si < 50 and si + 2 * c >= 30),
        "loam": 7 <= c < 27 and 28 <= si < 50 and s <= 52,
        "silt loam": (si >= 50 and 12 <= c < 27) or (50 <= si < 80 and c < 12),
        "silt": si >= 80 and c < 12,
        "sandy clay loam": 20 <= c < 35 and si < 28 and s > 45,
        "clay loam": 27 <= c < 40 and 20 < s <= 45,
        "silty clay loam": 27 <= c < 40 and s <= 20,
        "sandy clay": c >= 35 and s > 45,
        "silty clay": c >= 40 and si >= 40,
        "clay": c >= 40 and s <= 45 and si < 40,
    }


#: Largest sand + silt + clay [%] accepted (CAMELS: at most 100.5); sums below 100 are normal
#: (the rest is organic matter, water, other) and rescaled.
MAX_FRACTION_SUM = 103.0


def normalised_fractions(sand: float, silt: float, clay: float) -> tuple[float, float, float]:
    """Sand, silt, clay [%] rescaled to sum to 100.

    Raises
    ------
    LgarParameterError
        A fraction is not finite or negative, all are 0, or they sum to more than
        :data:`MAX_FRACTION_SUM`.
    """
    values = (float(sand), float(silt), float(clay))
    if not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
        raise LgarParameterError(f"sand, silt and clay fractions must be finite, >= 0 and not "
                                 f"all 0 [%], got {values}")
    total = sum(values)
    if total > MAX_FRACTION_SUM:
        raise LgarParameterError(
            f"sand_frac + silt_frac + clay_frac = {total:.4g} % ({values[0]:.4g} + "
            f"{values[1]:.4g} + {values[2]:.4g}): above 100 % (at most {MAX_FRACTION_SUM:g} % "
            f"is taken as rounding), so they are not percentages of one soil; check the "
            f"attributes")
    return tuple(100.0 * v / total for v in values)  # type: ignore[return-value]


def usda_texture_class(sand: float, silt: float, clay: float) -> str:
    """USDA texture class (e.g. ``"silty clay loam"``) of sand, silt, clay fractions [%]
    (rescaled to sum to 100 first; see the module docstring for the definitions)."""
    s, si, c = normalised_fractions(sand, silt, clay)
    hits = [name for name, ok in _rules(s, si, c).items() if ok]
    if len(hits) != 1:  # pragma: no cover - the rules partition the triangle (tested)
        raise AssertionError(f"texture rules give {hits} for sand {s}, silt {si}, clay {c}")
    return hits[0]


def layer_thicknesses(soil_depth_m: float) -> tuple[float, float, float]:
    """Thicknesses [cm] of the three layers of a column ``soil_depth_m`` [m] deep: 10, 30 and
    the rest, the column floored at :data:`MIN_SOIL_DEPTH_CM`."""
    depth = float(soil_depth_m)
    if not (math.isfinite(depth) and depth > 0):
        raise LgarParameterError(f"soil_depth_statsgo must be a positive depth [m], got "
                                 f"{soil_depth_m!r}")
    total = max(100.0 * depth, MIN_SOIL_DEPTH_CM)
    return (*UPPER_LAYERS_CM, total - sum(UPPER_LAYERS_CM))  # type: ignore[return-value]


def _attribute(attrs: Mapping, name: str) -> float:
    if name not in attrs or attrs[name] in (None, ""):
        raise LgarParameterError(f"attributes lack {name!r} (the texture table needs "
                                 f"{list(ATTRIBUTES)})")
    try:
        return float(attrs[name])
    except (TypeError, ValueError):
        raise LgarParameterError(f"attribute {name} must be a number, got "
                                 f"{attrs[name]!r}") from None


def parameters_from_attributes(attrs: Mapping, table=None, **overrides) -> LgarParameters:
    """The texture-table LGAR parameter set of a catchment (see the module docstring).

    Parameters
    ----------
    attrs : mapping
        CAMELS attributes; reads :data:`ATTRIBUTES` (fractions in %, depth in m).
    table : path, optional
        Soil table (default: the shipped copy of vG_default_params.dat).
    **overrides
        Other :class:`LgarParameters` fields (e.g. ``ponded_depth_max_cm``).
    """
    sand, silt, clay, depth = (_attribute(attrs, n) for n in ATTRIBUTES)
    texture = usda_texture_class(sand, silt, clay)
    soil = LayerSoil.from_table(TABLE_NAMES[texture], table)
    thickness = layer_thicknesses(depth)
    values = dict(layers=(soil,) * len(thickness), thickness_cm=thickness,
                  ponded_depth_max_cm=PONDED_DEPTH_MAX_CM, giuh_ordinates=GIUH_ORDINATES,
                  initial_psi_cm=INITIAL_PSI_CM, use_closed_form_g=True, reservoirs=RESERVOIRS,
                  source=f"texture table: USDA {texture} (sand {sand:.4g} %, silt {silt:.4g} %, "
                         f"clay {clay:.4g} %), soil depth {depth:.4g} m")
    values.update(overrides)
    return LgarParameters(**values)
