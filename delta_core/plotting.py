"""Hydrograph plots (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_hydrographs(sim: dict, rows: list[dict], path: str | Path, last_steps: int = 730,
                     flow_components: tuple[str, ...] = (), units: str = "mm d-1") -> Path:
    """One panel per basin: observed vs simulated streamflow over the last ``last_steps`` steps,
    with the model's flow components (e.g. surface flow, interflow, baseflow) as stacked areas
    beneath it (the last component at the bottom); NSE and KGE of the whole period in each title.

    Parameters
    ----------
    sim : dict
        As returned by :func:`delta_core.evaluation.simulate`.
    rows : list of dict
        Per-basin metrics (``nse``, ``kge``), in the order of ``sim["gauge_ids"]``.
    flow_components : tuple of str
        Outputs that add up to streamflow (the model spec's ``flow_components``).
    units : str
        Units of streamflow (axis label).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = sim["gauge_ids"]
    out = sim["outputs"]
    period = f"{sim['dates'][0]}..{sim['dates'][-1]}"
    dates = np.asarray(sim["dates"][-last_steps:]).astype("datetime64[s]").astype(object)
    comps = [c for c in flow_components if c in out]
    colours = plt.get_cmap("Pastel2").colors
    fig, axes = plt.subplots(len(ids), 1, figsize=(11, 2.4 * len(ids)), squeeze=False,
                             sharex=True)
    for b, (gid, ax) in enumerate(zip(ids, axes[:, 0])):
        base = np.zeros(len(dates))
        for i, c in enumerate(reversed(comps)):
            top = base + out[c][-last_steps:, b]
            ax.fill_between(dates, base, top, color=colours[i % len(colours)], lw=0,
                            label=f"simulated {c.replace('_', ' ')}")
            base = top
        ax.plot(dates, sim["qobs"][-last_steps:, b], color="k", lw=0.8, label="observed")
        ax.plot(dates, out["streamflow"][-last_steps:, b], color="tab:blue", lw=0.8,
                label="simulated")
        ax.set_ylabel(f"Q [{units}]")
        ax.set_title(f"{gid}: NSE {rows[b]['nse']:.2f}, KGE {rows[b]['kge']:.2f} over {period} "
                     f"(last {len(dates)} steps shown)", fontsize=9)
        ax.set_ylim(bottom=0)
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
