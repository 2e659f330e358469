"""Hydrograph plots (matplotlib, headless)."""
from __future__ import annotations

from pathlib import Path


def plot_hydrographs(sim: dict, rows: list[dict], path: str | Path, last_days: int = 730) -> Path:
    """One panel per basin: observed vs simulated streamflow (last ``last_days`` days) with
    baseflow shaded; NSE and KGE of the whole period in each title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = sim["gauge_ids"]
    period = f"{sim['dates'][0]}..{sim['dates'][-1]}"
    dates = sim["dates"][-last_days:].astype("datetime64[D]").astype(object)
    fig, axes = plt.subplots(len(ids), 1, figsize=(11, 2.4 * len(ids)), squeeze=False,
                             sharex=True)
    for b, (gid, ax) in enumerate(zip(ids, axes[:, 0])):
        q = sim["outputs"]["streamflow"][-last_days:, b]
        ax.fill_between(dates, 0, sim["outputs"]["baseflow"][-last_days:, b], color="tab:green",
                        alpha=0.3, label="simulated baseflow")
        ax.plot(dates, sim["qobs"][-last_days:, b], color="k", lw=0.8, label="observed")
        ax.plot(dates, q, color="tab:blue", lw=0.8, label="simulated")
        ax.set_ylabel("Q [mm/day]")
        ax.set_title(f"{gid}: NSE {rows[b]['nse']:.2f}, KGE {rows[b]['kge']:.2f} over {period} "
                     f"(last {last_days} days shown)", fontsize=9)
        ax.set_ylim(bottom=0)
    axes[0, 0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)

