"""dHBV at a sub-daily step (hourly in NextGen): the daily-trained networks, HBV stepped hourly.

The networks keep the daily view they were trained on; HBV advances every substep with rates
converted from the daily parameters by these rules (``n`` substeps per day, 24 for hours):

* recession coefficients K0, K1, K2 [d-1] act as fractions of the store per step; per substep
  ``k = 1 - (1 - K)^(1/n)``, so a store without inflow drains over n substeps exactly as over
  one day;
* the percolation capacity PERC [mm d-1] and the degree-day factor CFMAX [mm degC-1 d-1] are
  divided by n (refreezing, CFR x CFMAX, follows); thresholds and shapes (TT, FC, LP, BETA,
  BETAET, UZL, CFR, CWH) are unchanged;
* forcing is per substep: precipitation and PET amounts [mm per substep], temperature [degC];
* routing: the same gamma density sampled every substep
  (:func:`delta_core.routing.gamma_unit_hydrograph_substeps`, 15 days long);
* dynamic parameters (BETA, BETAET) come from the LSTM over *daily* forcing and hold for the day.
  A host that steps hour by hour knows a day's forcing only at its end, so the substep model
  uses day d - 1's LSTM output on day d (``lag_days = 1``; the first day: the LSTM's output
  before any forcing). ``lag_days = 0`` uses the same day's output, as the daily model does.

With ``n = 1`` and ``lag_days = 0`` :func:`simulate` is the daily model exactly (tested).
"""
from __future__ import annotations

import torch

from bmi_dhbv import hbv
from bmi_dhbv.kernel import run as run_physics
from delta_core import subdaily
from delta_core.patterns import WithinDay
from delta_core.subdaily import daily_sums, end_of_day
from delta_core.routing import gamma_unit_hydrograph_substeps, route

#: HBV fluxes summed to days.
FLUXES = ("q0", "q1", "q2", "et", "recharge", "excess", "perc", "melt")

#: Parameters whose values are per day and scale with the step, and how.
RECESSIONS: tuple[str, ...] = ("K0", "K1", "K2")
RATES: tuple[str, ...] = ("PERC", "CFMAX")


def substep_parameters(params: dict[str, torch.Tensor], steps_per_day: int
                       ) -> dict[str, torch.Tensor]:
    """HBV parameters of a daily step converted to ``1 / steps_per_day`` days (module rules)."""
    if steps_per_day == 1:
        return dict(params)
    out = dict(params)
    for k in RECESSIONS:
        out[k] = 1.0 - torch.pow(1.0 - params[k], 1.0 / steps_per_day)
    for k in RATES:
        out[k] = params[k] / steps_per_day
    return out


def lag_dynamic(model, raw: torch.Tensor, lag_days: int) -> torch.Tensor:
    """Shift the LSTM's raw daily outputs ``[D, B, n]`` by ``lag_days`` (0 or 1): day d gets
    the output after day d - lag; the first days get the output before any forcing."""
    if lag_days == 0:
        return raw
    if lag_days != 1:
        raise ValueError(f"lag_days must be 0 or 1, got {lag_days}")
    return model.dynamic_net.lag_one_step(raw)


def simulate(model, batch: dict, steps_per_day: int = 24, scheme: WithinDay | None = None,
             lag_days: int = 1, chunk_days: int = 365) -> dict[str, torch.Tensor]:
    """Run a :class:`~bmi_dhbv.model.DHBV` on daily forcing at ``steps_per_day`` substeps;
    return daily series (the series of :data:`bmi_dhbv.model.VARIABLES`, as :meth:`DHBV.forward`).

    Parameters
    ----------
    model : DHBV
        The model (kernel backend as configured; in training mode only the flows are kept).
    batch : dict
        As :meth:`DHBV.forward`: daily ``forcing`` [D, B, 3] (P mm/d, T degC, PET mm/d),
        ``x_forcing``, ``x_attr``, ``warmup`` (days: run without gradient, not returned).
    steps_per_day : int
        Substeps per day (24: hourly; 1: daily).
    scheme : WithinDay, optional
        How daily P and PET are spread over the hours (default: uniform rain, sine PET); for
        ``steps_per_day = 24``; a stochastic pattern's weights come from ``batch["rain_weights"]``
        [D, B, 24]. Temperature is held at the daily mean.
    lag_days : int
        Dynamic parameters from the LSTM output of ``lag_days`` days before (module docstring).
    chunk_days : int
        Days per kernel call (bounds memory; the result does not depend on it).

    Returns
    -------
    dict
        Daily series [D - warmup, B]: flows, ET, recharge, percolation, melt in mm/day (sums of
        the day's substeps), stores in mm at the end of each day (not in training mode),
        dynamic parameters (component means), PET.
    """
    n = steps_per_day
    scheme = scheme or WithinDay("uniform", pet="sine")
    forcing, x_attr = batch["forcing"], batch["x_attr"]
    warmup = int(batch.get("warmup", 0))
    n_days, n_basins = forcing.shape[:2]
    steps = subdaily.step_forcing(forcing, scheme if n == 24 else None, batch, n)
    static, route_a, route_b = model.static_and_routing(x_attr)
    daily = dict(static)
    dynamic = {}
    if model.dynamic_net is not None:
        raw, _ = model.dynamic_net(model.lstm_inputs(batch["x_forcing"], x_attr))
        unit = torch.sigmoid(lag_dynamic(model, raw, lag_days))
        c, n_d = model.options.n_components, len(model.dynamic_names)
        dynamic = hbv.scale_parameters(unit.reshape(n_days, n_basins, n_d, c), model.dynamic_names,
                                       model.options.parameter_ranges)
        daily.update(dynamic)
    par = substep_parameters(daily, n)
    keep = not model.training
    uh = gamma_unit_hydrograph_substeps(route_a, route_b, n, hbv.UH_LENGTH)
    lag = uh.shape[1] - 1

    def block(states, s0, s1, grad):
        d0, d1 = s0 // n, s1 // n
        chunk = {k: (v[d0:d1].repeat_interleave(n, dim=0) if v.dim() == 3 else v)
                 for k, v in par.items()}
        res = run_physics(steps.prcp[s0:s1], steps.temp[s0:s1], steps.pet[s0:s1], chunk, states,
                          model.recharge_net, keep_storages=keep and grad,
                          backend=model.engine.backend)
        out = {k: res.fluxes[k] for k in FLUXES}
        out.update({k: end_of_day(v, n) for k, v in res.storages.items()})
        return res.final_states, out

    states = hbv.cold_states(n_basins, model.options.n_components, forcing.dtype, forcing.device)
    states, series, tails = subdaily.run_steps(
        block, states, n_days * n, warmup * n, chunk_days * n, torch.Tensor.detach,
        history={k: lag for k in ("q0", "q1", "q2")})
    routed = {k: route(series[k], uh, tails[k]) for k in ("q0", "q1", "q2")}
    days = lambda x: daily_sums(x, n)  # noqa: E731
    out = {"surface_flow": days(routed["q0"]), "interflow": days(routed["q1"]),
           "baseflow": days(routed["q2"])}
    out["streamflow"] = out["surface_flow"] + out["interflow"] + out["baseflow"]
    f = {k: days(series[k]) for k in FLUXES}
    pet = daily_sums(steps.pet[warmup * n:]) if steps.given else forcing[warmup:, :, 2]
    out.update(streamflow_unrouted=f["q0"] + f["q1"] + f["q2"], et=f["et"], pet=pet,
               recharge=f["recharge"] + f["excess"], percolation=f["perc"], melt=f["melt"])
    if keep:
        st = {k: v for k, v in series.items() if k in hbv.STATE_NAMES}
        out.update(swe=st["snowpack"] + st["meltwater"], soil_moisture=st["soil_moisture"],
                   upper_zone=st["upper_zone"], lower_zone=st["lower_zone"])
    for name, v in dynamic.items():
        out[name] = v[warmup:].mean(-1)
    out["final_states"] = states
    return out
