"""CFE-ODE soil scheme: percolation, lateral flow and soil ET act simultaneously over the hour,
solved exactly.

The classic (C) scheme removes soil ET first, then adds the infiltration, then takes percolation
and lateral flow from the resulting storage: each flux is computed from a different storage and
the order matters. CFE-ODE instead integrates, over the hour, with the infiltration ``i`` [m h-1]
as a constant input,

    dS/dt = i - E                                       - (kp + kl) (S - fc)   for S > fc
    dS/dt = i - E (S - wp) / (fc - wp)                                         for wp < S <= fc
    dS/dt = i                                                                  for S <= wp

with E the PET left after rain (and retention) ET, kp = satdk slop 3600 / (Smax - fc) and
kl = K_lf / (Smax - fc) [h-1] (the classic scheme's linear outflows, soil exponents 1). The right
side is continuous and non-increasing in S, so S moves monotonically and crosses at most two
thresholds in an hour; within each regime the ODE is linear and solved in closed form
(exponential approach to the regime's equilibrium), and the fluxes are the exact time integrals.
The end storage is taken from the hour's water balance ``S1 = S0 + i - perc - lat - ET`` (it
equals the closed-form end state to ~1e-13 m), so water is conserved to rounding; the result
is differentiable (no iterations, no step-size error). Tested against a fine numerical
integration in ``tests/test_cfe_physics.py``.
"""
from __future__ import annotations

import torch

Tensor = torch.Tensor

#: Below this rate constant [h-1] a regime is integrated as a constant-rate (k = 0) regime.
K_SMALL = 1e-12


def _segment(s: Tensor, k: Tensor, s_eq: Tensor, rate0: Tensor, tau: Tensor
             ) -> tuple[Tensor, Tensor]:
    """Linear regime ``dS/dt = -k (S - s_eq)`` (or ``rate0`` if k ~ 0) over ``tau`` hours.

    Returns (end storage, integral of S over the segment).
    """
    exp_like = k > K_SMALL
    k_safe = torch.where(exp_like, k, torch.ones_like(k))
    decay = torch.exp(-k_safe * tau)
    end_e = s_eq + (s - s_eq) * decay
    int_e = s_eq * tau + (s - s_eq) * (1.0 - decay) / k_safe
    end_l = s + rate0 * tau
    int_l = s * tau + 0.5 * rate0 * tau * tau
    return torch.where(exp_like, end_e, end_l), torch.where(exp_like, int_e, int_l)


def _time_to(s: Tensor, target: Tensor, k: Tensor, s_eq: Tensor, rate0: Tensor,
             moving: Tensor) -> Tensor:
    """Hours from ``s`` to ``target`` in a linear regime (inf where not ``moving`` towards it)."""
    inf = torch.full_like(s, float("inf"))
    exp_like = k > K_SMALL
    k_safe = torch.where(exp_like, k, torch.ones_like(k))
    num = s - s_eq
    den = target - s_eq
    ok_e = moving & exp_like & (num * den > 0) & (num.abs() >= den.abs())
    ratio = torch.where(ok_e, num / torch.where(ok_e, den, torch.ones_like(den)),
                        torch.ones_like(num))
    t_e = torch.where(ok_e, torch.log(ratio) / k_safe, inf)
    ok_l = moving & ~exp_like & (rate0 != 0)
    t_l = torch.where(ok_l, (target - s) / torch.where(ok_l, rate0, torch.ones_like(rate0)), inf)
    t = torch.where(exp_like, t_e, t_l)
    return torch.where(t >= 0, t, inf)


def soil_hour(s0: Tensor, infil: Tensor, pet: Tensor, fc: Tensor, wp: Tensor, kp: Tensor,
              kl: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Integrate the soil ODE exactly over one hour (module docstring).

    Parameters
    ----------
    s0 : Tensor [B]
        Soil storage at the start of the hour [m].
    infil : Tensor [B]
        Infiltration during the hour [m], taken as a constant rate.
    pet : Tensor [B]
        PET left for the soil [m per hour].
    fc, wp : Tensor [B]
        Storages at field capacity and wilting point [m].
    kp, kl : Tensor [B]
        Percolation and lateral-flow rate constants [h-1].

    Returns
    -------
    (storage at the end, percolation, lateral flow, soil ET) [m]
    """
    zero = torch.zeros_like(s0)
    k1 = kp + kl
    span = fc - wp
    k2 = pet / torch.where(span > 0, span, torch.ones_like(span))
    k1_safe = torch.where(k1 > K_SMALL, k1, torch.ones_like(k1))
    k2_safe = torch.where(k2 > K_SMALL, k2, torch.ones_like(k2))
    eq1 = fc + (infil - pet) / k1_safe
    eq2 = wp + infil / k2_safe
    s = s0
    remaining = torch.ones_like(s0)
    perc, lat, et = zero, zero, zero
    # regime: 1 above fc, 2 between wp and fc, 3 below wp
    regime = torch.where(s0 > fc, 1, torch.where(s0 > wp, 2, 3))
    for _ in range(3):  # at most two crossings
        in1, in2 = regime == 1, regime == 2
        k = torch.where(in1, k1, torch.where(in2, k2, zero))
        eq = torch.where(in1, eq1, torch.where(in2, eq2, s))
        rate0 = torch.where(in1, infil - pet, torch.where(in2, infil, infil))
        # the threshold the storage is heading for, if any
        target = torch.where(in1, fc, torch.where(in2, fc, wp))
        up2 = torch.where(k2 > K_SMALL, eq2 > fc, infil > 0)
        moving = torch.where(in1, infil < pet, torch.where(in2, up2, infil > 0))
        t_cross = _time_to(s, target, k, eq, rate0, moving & (remaining > 0))
        tau = torch.minimum(remaining, t_cross)
        end, integral = _segment(s, k, eq, rate0, tau)
        crossed = t_cross <= remaining
        end = torch.where(crossed, target, end)
        perc = perc + torch.where(in1, kp * (integral - fc * tau), zero)
        lat = lat + torch.where(in1, kl * (integral - fc * tau), zero)
        et = et + torch.where(in1, pet * tau, torch.where(in2, k2 * (integral - wp * tau), zero))
        s = end
        remaining = remaining - tau
        regime = torch.where(crossed, torch.where(in1, 2, torch.where(in2, 1, 2)), regime)
    # the end storage from the balance (equal to ``s`` to ~1e-13 m): the hour conserves water
    return s0 + infil - perc - lat - et, perc, lat, et
