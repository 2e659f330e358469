#!/usr/bin/env python
"""Many catchments in one process, as ngen runs them: one BMI instance per catchment.

For N = 1, 100, 1000 (``--n``) instances of a model's BMI (shipped bundle, the attributes of
the basin of the model's CAMELS realization, hourly host step), each spun up on the last
``--spinup-years`` (default 5 for dHBV and dCFE, 1 for dLGAR) of the same spin-up file
(``--spinup``; default that realization's: daily rows for dHBV and dCFE, hourly for dLGAR),
then stepped through ``--hours`` hourly updates with ngen's per-step calls (``set_value`` of each
input, ``update``, ``get_value`` of the main output). Reports the fixed cost of the process's
first instance (it loads the bundle and builds the networks), the start-up of each further
catchment (initialize with spin-up), time per catchment-hour, and the process's peak resident
memory (``ru_maxrss``) and its growth per catchment. Each N runs in a fresh process. Writes
``OUT/ngen_scale_<model>.md`` and ``.json``.

With ``--ngen BINARY`` (an ngen built with Python; ``--venv`` the virtual environment it runs
in, this package installed there) the same N catchments also run in the real engine: a
realization of N copies of the sample catchment (configs as the sample's, the same spin-up file,
each catchment its own copy of the sample's first ``--hours`` of hourly forcing), timed by ngen's
own ``NGen::init`` and ``NGen::simulation``, peak memory from ``/usr/bin/time``.

    OMP_NUM_THREADS=1 python scripts/benchmark_ngen_scale.py --model dhbv --out benchmarks
    python scripts/benchmark_ngen_scale.py --model dhbv --ngen /path/ngen --venv /path/venv
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: Per model: its CAMELS realization's basin, spin-up file and default spin-up years.
SAMPLE = {"dhbv": ("camels_sample", "cat-01022500", 5),
          "dcfe": ("dcfe_camels_sample", "cat-01022500", 5),
          "dlgar": ("dlgar_camels_arid", "cat-09480000", 1)}


def sample_files(model: str) -> tuple[Path, Path]:
    """The config and the spin-up file of the model's CAMELS realization."""
    folder, cid, _ = SAMPLE[model]
    return (REPO / "realizations" / folder / "config" / f"{cid}.yaml",
            REPO / "realizations" / folder / "spinup" / f"{cid}.csv")


def trimmed(spinup: Path, years: float, folder: Path) -> Path:
    """The last ``years`` of a spin-up CSV (daily or hourly rows), written into ``folder``."""
    lines = spinup.read_text().splitlines()
    daily = lines[0].startswith("date")
    keep = int(round(years * 365.25 * (1 if daily else 24)))
    path = folder / f"spinup_{years:g}y_{spinup.name}"
    path.write_text("\n".join([lines[0], *lines[1:][-keep:]]) + "\n")
    return path


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def one_run(model: str, n: int, hours: int, spinup: Path, bundle: list[str] | None = None
            ) -> dict:
    """Run in this process: n instances, spin-up, hours of hourly updates."""
    import numpy as np
    import torch
    import yaml

    from delta_core.ngen.crosswalk import PRECIP, RUNOFF_DEPTH, TEMP
    from delta_core.registry import model_spec

    torch.set_num_threads(1)
    tmp = Path(tempfile.mkdtemp(prefix="ngen_scale_"))
    last = np.datetime64(_last_time(spinup), "h") + np.timedelta64(24 if _daily(spinup) else 1, "h")
    cfg = yaml.safe_load(sample_files(model)[0].read_text())
    cfg = {k: v for k, v in cfg.items() if k not in ("spinup", "end_time", "n_steps")}
    cfg.update(time_step_seconds=3600, start_time=str(last).replace("T", " ") + ":00:00",
               spinup_forcing=str(spinup),
               **({"bundle": bundle[0] if len(bundle) == 1 else bundle} if bundle else {}))
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cls = model_spec(model).load_bmi_class()
    rss0 = rss_kb()
    t0 = time.perf_counter()
    models = [cls()]
    models[0].initialize(str(path))
    t_first = time.perf_counter() - t0
    rss1 = rss_kb()
    t0 = time.perf_counter()
    for _ in range(n - 1):
        m = cls()
        m.initialize(str(path))
        models.append(m)
    t_start = time.perf_counter() - t0
    rss2 = rss_kb()
    rng = np.random.default_rng(0)
    p = np.where(rng.random(hours) < 0.1, rng.gamma(1.0, 2.0, hours), 0.0)
    temp = 8.0 + 6.0 * np.sin(2 * np.pi * (np.arange(hours) % 24 - 9) / 24)
    pv, tv, out = np.zeros(1), np.zeros(1), np.zeros(1)
    t0 = time.perf_counter()
    for h in range(hours):
        pv[0], tv[0] = p[h], temp[h]
        for m in models:
            m.set_value(PRECIP, pv)
            m.set_value(TEMP, tv)
            m.update()
            m.get_value(RUNOFF_DEPTH, out)
    t_run = time.perf_counter() - t0
    return {"model": model, "n": n, "hours": hours, "first_instance_s": t_first,
            "startup_s_per_catchment": t_start / (n - 1) if n > 1 else t_first,
            "us_per_catchment_hour": t_run / (n * hours) * 1e6, "run_s": t_run,
            "rss_kb_first": rss1 - rss0,
            "rss_kb_per_catchment": (rss2 - rss1) / (n - 1) if n > 1 else rss1 - rss0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def ngen_run(model: str, n: int, hours: int, spinup: Path, ngen: str, venv: str,
             null: bool = False) -> dict:
    """N copies of the model's sample catchment in the real engine (module docstring); with
    ``null`` the same realization runs :mod:`ngen_null_bmi` instead (the engine's own cost)."""
    import os

    import yaml

    from delta_core.ngen.realization import write_feature_collection

    folder = REPO / "realizations" / SAMPLE[model][0]
    cfg_path, _ = sample_files(model)
    tmp = Path(tempfile.mkdtemp(prefix=f"ngen_real_{model}_"))
    real = json.loads((folder / "realization.json").read_text())
    forcing_file = next((folder / "forcing").glob("*.csv"))
    lines = forcing_file.read_text().splitlines()[:hours + 1]
    start = lines[1].split(",", 1)[0]
    end = lines[-1].split(",", 1)[0]
    real["time"].update(start_time=start, end_time=end)
    real["global"]["forcing"].update(path="./forcing/", file_pattern="{{id}}.csv")
    real["global"]["formulations"][0]["params"]["init_config"] = "./config/{{id}}.yaml"
    real["output"] = {"root": "./output/"}
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg = {k: v for k, v in cfg.items() if k not in ("spinup", "end_time", "n_steps")}
    cfg.update(start_time=start, spinup_forcing=str(spinup.resolve()))
    if null:  # the same variables and units, no model
        params = real["global"]["formulations"][0]["params"]
        cfg_file = tmp / "model.yaml"
        cfg_file.write_text(yaml.safe_dump(cfg))
        from delta_core.registry import model_spec

        bmi = model_spec(model).load_bmi_class()()
        bmi.initialize(str(cfg_file))
        outs = [params["main_output_variable"], *params.get("output_variables", [])]
        cfg = {"inputs": {k: bmi.get_var_units(k) for k in params["variables_names_map"]},
               "outputs": {k: bmi.get_var_units(k) for k in dict.fromkeys(outs)}}
        params["python_type"] = "ngen_null_bmi.NullBmi"
    for sub in ("config", "forcing", "output"):
        (tmp / sub).mkdir()
    cats, nexus = [], []
    for i in range(1, n + 1):
        cid, x, y = f"cat-{i}", -100.0 + 0.05 * (i % 100), 35.0 + 0.05 * (i // 100)
        ring = [[x, y], [x + 0.02, y], [x + 0.02, y + 0.02], [x, y + 0.02], [x, y]]
        cats.append({"type": "Feature", "id": cid, "properties": {
            "areasqkm": float(cfg.get("area_km2", 100.0)), "toid": f"nex-{i}"},
            "geometry": {"type": "MultiPolygon", "coordinates": [[ring]]}})
        nexus.append({"type": "Feature", "id": f"nex-{i}", "properties": {"toid": ""},
                      "geometry": {"type": "Point", "coordinates": [x, y]}})
        (tmp / "config" / f"{cid}.yaml").write_text(yaml.safe_dump(cfg))
        (tmp / "forcing" / f"{cid}.csv").write_text("\n".join(lines) + "\n")
    write_feature_collection(tmp / "catchment_data.geojson", "catchment_data", cats)
    write_feature_collection(tmp / "nexus_data.geojson", "nexus_data", nexus)
    (tmp / "realization.json").write_text(json.dumps(real, indent=1))
    env = {**os.environ, "VIRTUAL_ENV": venv, "OMP_NUM_THREADS": "1",
           "PATH": f"{venv}/bin:{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)
    if null:
        env["PYTHONPATH"] = str(Path(__file__).resolve().parent)
    res = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M", ngen, "catchment_data.geojson",
                          "all", "nexus_data.geojson", "all", "realization.json"], cwd=tmp,
                         env=env, capture_output=True, text=True)
    text = res.stdout + res.stderr
    if res.returncode != 0:
        raise RuntimeError(f"ngen exited with {res.returncode} in {tmp}:\n{text[-2000:]}")
    grab = lambda key: float(text.split(key, 1)[1].split()[0])  # noqa: E731
    return {"model": model, "n": n, "hours": hours, "init_s": grab("NGen::init:"),
            "simulation_s": grab("NGen::simulation:"), "peak_rss_mb": grab("MAXRSS_KB") / 1024,
            "bmi": "null" if null else model, "folder": str(tmp)}


def _daily(spinup: Path) -> bool:
    return spinup.read_text().split(",", 1)[0] == "date"


def _last_time(spinup: Path) -> str:
    return spinup.read_text().rstrip().rsplit("\n", 1)[-1].split(",", 1)[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="dhbv", choices=sorted(SAMPLE))
    ap.add_argument("--n", default="1,100,1000", help="catchment counts (comma-separated)")
    ap.add_argument("--hours", type=int, default=720, help="hourly updates (default 720: 30 d)")
    ap.add_argument("--spinup", help="spin-up CSV (default: the model's CAMELS realization's)")
    ap.add_argument("--spinup-years", type=float,
                    help="years of it to run (its last ones; default 5, dLGAR 1)")
    ap.add_argument("--bundle", action="append",
                    help="weight bundle (default: the BMI's default); repeat it for an ensemble "
                         "in each instance (bundle: [a, b])")
    ap.add_argument("--out", help="folder for ngen_scale_<model>.md/.json")
    ap.add_argument("--ngen", help="an ngen binary built with Python: run the N catchments in it "
                                   "too")
    ap.add_argument("--venv", help="the virtual environment ngen runs in (with --ngen)")
    ap.add_argument("--ngen-only", action="store_true",
                    help="skip the in-process runs (the table keeps OUT's last ones; likewise a "
                         "run without --ngen keeps OUT's last real-engine rows)")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.bundle = [str(Path(b).resolve()) for b in a.bundle] if a.bundle else None
    if a.child:
        spinup = Path(a.spinup)
        print("RESULT " + json.dumps(one_run(a.model, a.child, a.hours, spinup, a.bundle)),
              flush=True)
        return 0
    years = a.spinup_years or SAMPLE[a.model][2]
    spinup = trimmed(Path(a.spinup) if a.spinup else sample_files(a.model)[1], years,
                     Path(tempfile.mkdtemp(prefix="ngen_scale_")))
    rows = []
    for n in (int(x) for x in a.n.split(",")):
        if a.ngen_only:
            break
        cmd = [sys.executable, __file__, "--model", a.model, "--hours", str(a.hours),
               "--spinup", str(spinup), "--child", str(n)]
        for b in a.bundle or []:
            cmd += ["--bundle", b]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        row = json.loads(next(l for l in res.stdout.splitlines() if l.startswith("RESULT"))[7:])
        rows.append(row)
        print(row, flush=True)
    if a.ngen_only and a.out and (Path(a.out) / f"ngen_scale_{a.model}.json").is_file():
        kept = json.loads((Path(a.out) / f"ngen_scale_{a.model}.json").read_text())
        rows = kept if isinstance(kept, list) else kept["in_process"]  # the last in-process run
    from bmi_dhbv.kernel import _core as hbv_core  # the build flags of the figures

    source = Path(a.spinup) if a.spinup else sample_files(a.model)[1]
    lines = [f"{a.model} BMI, one process, N catchments x {a.hours} hourly updates, each spun up "
             f"on {years:g} years of {source.name}"
             f" ({platform.processor() or platform.machine()}, python "
             f"{platform.python_version()}, {hbv_core.BUILD_INFO['compiler']}; "
             f"`OMP_NUM_THREADS=1 python scripts/benchmark_ngen_scale.py --model {a.model}`)",
             "", "| N | first instance (loads the bundle) | start-up per further catchment | "
             "per catchment-hour | memory per catchment | peak RSS |",
             "|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['n']} | {r['first_instance_s'] * 1e3:.0f} ms | "
              f"{r['startup_s_per_catchment'] * 1e3:.1f} ms | "
              f"{r['us_per_catchment_hour']:.1f} µs | {r['rss_kb_per_catchment']:.0f} kB | "
              f"{r['peak_rss_mb']:.0f} MB |" for r in rows]
    real = []
    saved = Path(a.out) / f"ngen_scale_{a.model}.json" if a.out else None
    if not a.ngen and saved is not None and saved.is_file():  # keep the last real-engine rows
        kept = json.loads(saved.read_text())
        real = [] if isinstance(kept, list) else kept.get("ngen", [])
    if a.ngen:
        if not a.venv:
            ap.error("--ngen needs --venv (the environment ngen runs in)")
        counts = [int(x) for x in a.n.split(",")]
        real = [ngen_run(a.model, n, a.hours, spinup, a.ngen, a.venv) for n in counts]
        real.append(ngen_run(a.model, max(counts), a.hours, spinup, a.ngen, a.venv, null=True))
        for r in real:
            print(r, flush=True)
    if real:
        one = next((r for r in real if r["n"] == 1 and r["bmi"] != "null"), None)
        engine = Path(a.ngen).name if a.ngen else "ngen"
        lines += ["", f"In the real engine ({engine} with Python; its own timers; "
                      f"start-up per further catchment = (NGen::init(N) - NGen::init(1)) / "
                      f"(N - 1)):", "",
                  "| BMI | N | NGen::init | start-up per further catchment | NGen::simulation | "
                  "per catchment-hour | peak RSS |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in real:
            per = ((r["init_s"] - one["init_s"]) / (r["n"] - 1) * 1e3
                   if one is not None and r["n"] > 1 and r["bmi"] != "null" else float("nan"))
            name = "null (the engine's own cost)" if r["bmi"] == "null" else a.model
            lines.append(f"| {name} | {r['n']} | {r['init_s']:.2f} s | {per:.1f} ms | "
                         f"{r['simulation_s']:.2f} s | "
                         f"{r['simulation_s'] / (r['n'] * a.hours) * 1e6:.0f} µs | "
                         f"{r['peak_rss_mb']:.0f} MB |")
    print("\n".join(lines))
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"ngen_scale_{a.model}.md").write_text("\n".join(lines) + "\n")
        (out / f"ngen_scale_{a.model}.json").write_text(json.dumps(
            {"in_process": rows, "ngen": real}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
