"""Replay the NextGen engine's (ngen's) call sequence on a Python BMI model, without ngen.

Reads a realization JSON, and for each catchment does what ngen 0.3 does with a ``bmi_python``
formulation (observed on NOAA-OWP/ngen 0.3.0 and read from its Python adapter):

1. constructs ``python_type`` with no arguments (``module_path`` added to ``sys.path``),
   ``initialize(init_config)`` with ``{{id}}`` replaced by the catchment id, then
   ``get_time_units``, ``get_start_time``, ``get_output_item_count``, ``get_output_var_names``,
   ``get_var_units`` of each output; pushes ``model_params`` with ``set_value``;
2. every output interval: ``get_current_time`` (twice; plus ``get_end_time`` unless
   ``allow_exceed_end_time``); for each input ``get_input_item_count``, ``get_input_var_names``,
   ``get_var_itemsize``, ``get_var_units``, ``get_var_type``, ``get_var_nbytes`` and
   ``set_value(name, 1-D float64 array)`` with the forcing value converted into the model's units;
   then ``get_time_step`` and ``update()`` if the model step equals the interval, otherwise
   ``update_until(now + interval)``; then, for the main output and each ``output_variables``
   entry, ``get_var_type``, ``get_var_itemsize``, ``get_value_at_indices(name, dest, [0])``,
   ``get_var_units``;
3. ``finalize()``.

Forcing comes from CsvPerFeature files (``forcing.path`` + ``file_pattern``). Columns are found by
short name (``precip_rate``, ``TMP_2maboveground``...) or CSDMS standard name; a header
``name [units]`` overrides the default unit. Rows within an output interval are averaged (summed
for ``APCP_surface``, an amount per row). Unit conversion uses the explicit table
:data:`delta_core.ngen.crosswalk.CONVERSIONS`; an unknown conversion is an error here (ngen only
warns and passes the raw value through, which silently corrupts results).

The main output is converted to metres and turned into nexus flow as ngen does,
``value_m * areasqkm * 1e6 / 3600`` m3 s-1 (ngen's constant 3600 is right for hourly output
intervals only; ``flow_m3s_interval`` gives ``value_m * area / interval`` as well). Per-catchment
CSVs ``<id>.csv`` (``Time Step,Time,<output_header_fields>``, values in model units, as ngen) and
per-nexus CSVs ``<nex-id>_output.csv`` (``index,time,flow m3 s-1``) go to ``output.root``.

Relative paths in the realization are resolved against the working directory (default: the
realization's folder), as if ngen were started there.

With an ngen partition file (``--partition FILE --rank R``), only rank R's share of an
``mpirun`` run is replayed: its catchments, and the nexuses it writes, with the flow it would
receive from other ranks recomputed from their catchments (:func:`replay`, Notes).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib
import io
import json
import re
import sys
import warnings
from pathlib import Path

import numpy as np

from delta_core.bmi.base import BmiError
from delta_core.console import one_line_warnings
from delta_core.fileio import atomic_write_text
from delta_core.ngen.crosswalk import (BMI_TYPES, NGEN_FORCINGS, SUM_COLUMNS, ReplayError,
                                      check_catchment_id, convert, time_units_seconds)
from delta_core.ngen.partition import nexus_writers, read_partitions


class CsvForcing:
    """One CsvPerFeature file: ``time`` column plus variables (``name [units]`` headers)."""

    def __init__(self, path: Path):
        self.path = path
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        if len(rows) < 2:
            raise ReplayError(f"forcing file {path} has no data rows")
        header = [h.strip() for h in rows[0]]
        tcol = next((i for i, h in enumerate(header) if h.lower() in ("time", "date")), None)
        if tcol is None:
            raise ReplayError(f"forcing file {path} has no 'time' column")
        self.times = np.array([_parse_dt(r[tcol]) for r in rows[1:]], dtype="datetime64[s]")
        steps = np.diff(self.times).astype(np.int64)
        if len(steps) and np.any(steps != steps[0]):
            raise ReplayError(f"forcing file {path}: rows are not evenly spaced in time")
        self.row_seconds = int(steps[0]) if len(steps) else 3600
        self.columns: dict[str, np.ndarray] = {}
        self.units: dict[str, str] = {}
        for i, h in enumerate(header):
            if i == tcol:
                continue
            m = re.fullmatch(r"(.+?)\s*\[(.*)\]", h)
            name, units = (m.group(1).strip(), m.group(2).strip()) if m else (h, None)
            if units is None:
                units = NGEN_FORCINGS.get(name, (None, ""))[1]
            self.columns[name] = np.array([float(r[i]) if r[i].strip() else np.nan
                                           for r in rows[1:]])
            self.units[name] = units

    def resolve(self, framework_name: str) -> str:
        """Column holding ``framework_name`` (a short name or a CSDMS standard name)."""
        if framework_name in self.columns:
            return framework_name
        for short, (std, _) in NGEN_FORCINGS.items():
            if std == framework_name and short in self.columns:
                return short
        raise ReplayError(f"forcing file {self.path} cannot provide {framework_name!r}; "
                          f"columns: {sorted(self.columns)}")

    def value(self, column: str, t0: np.datetime64, seconds: float) -> float:
        """Value of ``column`` over ``[t0, t0 + seconds)``: mean of the rows (sum for amounts)."""
        if seconds < self.row_seconds:
            raise ReplayError(f"forcing file {self.path} has rows every {self.row_seconds} s, "
                              f"coarser than the {seconds} s interval")
        i0 = int((t0 - self.times[0]).astype(np.int64) // self.row_seconds)
        n = int(round(seconds / self.row_seconds))
        if i0 < 0 or i0 + n > len(self.times) or self.times[i0] != t0:
            raise ReplayError(f"forcing file {self.path} does not cover {t0} + {seconds} s "
                              f"({self.times[0]}..{self.times[-1]})")
        x = self.columns[column][i0:i0 + n]
        return float(x.sum() if column in SUM_COLUMNS else x.mean())

    def where(self, column: str, t0: np.datetime64, seconds: float) -> str:
        """``file line N (time)`` of the row of ``column`` that makes the value over
        ``[t0, t0 + seconds)`` bad: the first non-finite or negative one, else the first."""
        i0 = int((t0 - self.times[0]).astype(np.int64) // self.row_seconds)
        x = self.columns[column][i0:i0 + int(round(seconds / self.row_seconds))]
        bad = np.flatnonzero(~np.isfinite(x) | (x < 0))
        i = i0 + (int(bad[0]) if bad.size else 0)
        t = str(self.times[i]).replace("T", " ")
        return f"{self.path} line {i + 2} ({t}) column {column!r} = {self.columns[column][i]}"


def _parse_dt(s: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(str(s).strip())
    except ValueError:
        raise ReplayError(f"cannot parse time {s!r} (expected 'YYYY-MM-DD HH:MM:SS')") from None


# -- the replay ----------------------------------------------------------------------------------
def _catchments(geojson: Path) -> dict[str, dict]:
    d = json.loads(Path(geojson).read_text())
    out = {}
    for f in d.get("features", []):
        cid = f.get("id") or f.get("properties", {}).get("id")
        if cid is None:
            raise ReplayError(f"{geojson}: a feature has no id")
        check_catchment_id(cid, str(geojson))
        out[cid] = dict(f.get("properties", {}))
    if not out:
        raise ReplayError(f"{geojson} holds no catchment features")
    return out


def _formulation(realization: dict, cat_id: str) -> tuple[dict, dict]:
    glob = realization.get("global", {})
    override = realization.get("catchments", {}).get(cat_id, {})
    forms = override.get("formulations") or glob.get("formulations")
    forcing = override.get("forcing") or glob.get("forcing")
    if not forms:
        raise ReplayError(f"no formulation for {cat_id}")
    if forcing is None:
        raise ReplayError(f"no forcing section for {cat_id}")
    form = forms[0]
    if form.get("name") != "bmi_python":
        raise ReplayError(f"formulation {form.get('name')!r} for {cat_id}: this replay supports "
                          f"only bmi_python")
    return form["params"], forcing


def _load_class(params: dict, root: Path, source: Path) -> type:
    """The class ``python_type`` names (``source``: the realization, for messages)."""
    if params.get("module_path"):
        mp = str((root / params["module_path"]).resolve())
        if mp not in sys.path:
            sys.path.insert(0, mp)
    ptype = str(params.get("python_type"))
    module, _, cls = ptype.rpartition(".")
    valid = f"this package's are {', '.join(BMI_TYPES)}"
    if not module:
        raise ReplayError(f"{source}: python_type {ptype!r} must be 'package.ClassName'; {valid}")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ReplayError(f"{source}: python_type {ptype!r} cannot be loaded ({exc}); "
                          f"{valid}") from None


def replay(realization_path: str | Path, catchments_path: str | Path,
           ids: list[str] | None = None, workdir: str | Path | None = None,
           output_root: str | Path | None = None, write: bool = True,
           partition: str | Path | None = None, rank: int | None = None) -> dict:
    """Run every catchment of a realization as ngen would; return the results.

    Parameters
    ----------
    realization_path : path
        ngen realization JSON.
    catchments_path : path
        catchment_data.geojson (``areasqkm``, ``toid`` properties).
    ids : list of str, optional
        Catchment ids to run (default: all in the geojson).
    workdir : path, optional
        Directory relative paths are resolved against (default: the realization's folder).
    output_root : path, optional
        Where to write the CSVs (default: the realization's ``output.root``).
    write : bool
        Write per-catchment and per-nexus CSVs.
    partition : path, optional
        ngen partition file (:mod:`delta_core.ngen.partition`): run only the share of MPI rank
        ``rank``, as ``mpirun -n <partitions> ngen ... partition`` would on that rank.
    rank : int, optional
        The rank, with ``partition``.

    Returns
    -------
    dict with ``times`` (datetime64[s] [N], start of each interval), ``interval`` [s],
    ``catchments`` {id: {"outputs": {name: [N]}, "units": {name: units}, "main_m": [N],
    "flow_m3s": [N] (ngen's formula), "flow_m3s_interval": [N], "area_km2"}} and ``nexus``
    {id: flow [N] m3 s-1}; with ``partition``, also ``rank``, ``ranks`` and ``received``
    (the remote catchments whose flow the rank receives).

    Notes
    -----
    With ``partition``, ``catchments`` holds the rank's catchments and ``nexus`` the nexuses
    the rank writes: those it does not send to another rank, with the flow of its own
    catchments plus the flow it receives. The received flow is recomputed here by running those
    remote catchments (each with its own BMI instance; their outputs are not written), so a
    rank's replay needs nothing from the other ranks. Files go to the output root, or to its
    ``rank_<R>/`` folder where the realization's ``output.catchment`` or ``output.nexus`` sets
    ``"rank_subdir": true``, as ngen does.
    """
    realization_path = Path(realization_path)
    real = json.loads(realization_path.read_text())
    root = Path(workdir) if workdir is not None else realization_path.resolve().parent
    cats = _catchments(Path(catchments_path))
    share = None
    if partition is not None:
        if ids:
            raise ReplayError("--ids and --partition exclude each other: the partition file "
                              "says which catchments the rank runs")
        share = _rank_share(Path(partition), rank, cats)
        ids = share["catchments"]
    elif rank is not None:
        raise ReplayError("--rank needs --partition FILE (the ngen partition file)")
    ids = list(ids) if ids else sorted(cats)
    unknown = [i for i in ids if i not in cats]
    if unknown:
        raise ReplayError(f"catchment(s) {unknown} not in {catchments_path}")
    tsec = real["time"]
    start = np.datetime64(_parse_dt(tsec["start_time"]), "s")
    end = np.datetime64(_parse_dt(tsec["end_time"]), "s")
    interval = float(tsec.get("output_interval", 3600))
    if end < start or interval <= 0:
        raise ReplayError(f"{realization_path}: time.end_time {tsec['end_time']} is before "
                          f"time.start_time {tsec['start_time']}" if end < start else
                          f"{realization_path}: time.output_interval must be > 0 s, got "
                          f"{interval:g}")
    n_steps = int((end - start).astype(np.int64) // int(interval)) + 1
    times = start + np.arange(n_steps) * np.timedelta64(int(interval), "s")
    out_root = Path(output_root) if output_root is not None else \
        root / real.get("output", {}).get("root", "./output/")
    results = {"times": times, "interval": interval, "catchments": {}, "nexus": {}}
    for cid in ids:
        results["catchments"][cid] = _run_catchment(real, cid, cats[cid], root, times, interval,
                                                    realization_path)
        nex = cats[cid].get("toid")
        if nex:
            flow = results["catchments"][cid]["flow_m3s"]
            results["nexus"][nex] = results["nexus"].get(nex, 0.0) + flow
    roots = (out_root, out_root)
    if share is not None:
        received = {cid: _run_catchment(real, cid, cats[cid], root, times, interval,
                                        realization_path)["flow_m3s"]
                    for cid in share["received"]}
        results["nexus"] = _rank_nexus_flows(share, results["catchments"], received)
        results.update(rank=share["rank"], ranks=share["ranks"], received=share["received"])
        roots = tuple(_rank_root(out_root, real, domain, share["rank"], share["ranks"])
                      for domain in ("catchment", "nexus"))
    if write:
        _write_outputs(results, *roots)
        results["output_root"] = out_root
    return results


def _rank_share(path: Path, rank: int | None, cats: dict[str, dict]) -> dict:
    """What ``rank`` runs and writes under the partition file ``path``: its ``catchments``,
    the remote catchments whose flow it ``received``, and ``nexus`` {id: contributing ids}."""
    parts = read_partitions(path, cats)
    if rank is None or not 0 <= rank < len(parts):
        what = "--partition needs --rank R" if rank is None else f"--rank {rank}"
        raise ReplayError(f"{what}: {path} has partitions for ranks 0..{len(parts) - 1}; give "
                          f"one of them")
    writes = {nex: feeders for nex, (r, feeders) in nexus_writers(parts, cats, path).items()
              if r == rank}
    own = sorted(c for c in parts[rank].catchments if c in cats)
    received = sorted({c for feeders in writes.values() for c in feeders} - set(own))
    rank_of = {c: p.rank for p in parts for c in p.catchments}
    return {"rank": rank, "ranks": len(parts), "catchments": own,
            "received": {c: rank_of[c] for c in received}, "nexus": writes}


def _rank_nexus_flows(share: dict, own: dict, received: dict) -> dict[str, np.ndarray]:
    """Flow of each nexus the rank writes: its own catchments' flow, then each sending rank's
    sum (one message per rank and step in ngen)."""
    out = {}
    for nex, feeders in share["nexus"].items():
        flow = sum((own[c]["flow_m3s"] for c in feeders if c in own), 0.0)
        for r in sorted({share["received"][c] for c in feeders if c in received}):
            flow = flow + sum(received[c] for c in feeders if share["received"].get(c) == r)
        out[nex] = flow
    return out


def _rank_root(out_root: Path, real: dict, domain: str, rank: int, ranks: int) -> Path:
    """ngen's output folder of a rank for ``domain`` (``catchment`` or ``nexus``)."""
    conf = real.get("output", {}).get(domain, {})
    if ranks > 1 and (conf.get("rank_subdir") or conf.get("grouping") == "per_formulation"):
        return out_root / f"rank_{rank}"
    return out_root


def _run_catchment(real: dict, cid: str, props: dict, root: Path, times: np.ndarray,
                   interval: float, source: Path) -> dict:
    params, forcing_cfg = _formulation(real, cid)
    warned: set = set()
    if params.get("uses_forcing_file"):
        raise ReplayError("uses_forcing_file: true aborts ngen ('parameter was removed'); omit "
                          "it or set false")
    if forcing_cfg.get("provider", "CsvPerFeature") != "CsvPerFeature":
        raise ReplayError(f"forcing provider {forcing_cfg.get('provider')!r}: only CsvPerFeature "
                          f"is supported")
    fdir = root / forcing_cfg.get("path", ".")
    pattern = re.compile(forcing_cfg["file_pattern"].replace("{{id}}", re.escape(cid)))
    files = sorted(p for p in fdir.iterdir() if pattern.fullmatch(p.name))
    if not files:
        raise ReplayError(f"no forcing file for {cid} in {fdir} matching "
                          f"{forcing_cfg['file_pattern']!r}")
    if len(files) > 1:
        raise ReplayError(f"forcing file pattern {forcing_cfg['file_pattern']!r} matches "
                          f"{len(files)} files for {cid} in {fdir} ({files[0].name}, "
                          f"{files[1].name}, ...): ngen reads whichever the directory lists "
                          f"first; make the pattern match one file, e.g. '{{{{id}}}}.csv'")
    forcing = CsvForcing(files[0])
    init = root / params["init_config"].replace("{{id}}", cid)
    if not init.is_file():
        raise ReplayError(f"init_config {init} is not a readable file (ngen aborts)")
    area = float(props["areasqkm"])
    names_map = params.get("variables_names_map", {})
    allow_exceed = bool(params.get("allow_exceed_end_time", False))
    main = params["main_output_variable"]
    out_vars = list(params.get("output_variables") or [main])

    # 1. construction and initialize
    model = _load_class(params, root, source)()
    model.initialize(str(init))
    t_factor = time_units_seconds(model.get_time_units())
    model_t0 = model.get_start_time() * t_factor
    n_out = model.get_output_item_count()
    outputs = model.get_output_var_names()
    if n_out != len(outputs):
        raise ReplayError(f"{cid}: get_output_item_count {n_out} != {len(outputs)} names")
    out_units = {n: model.get_var_units(n) for n in outputs}
    for name, value in (params.get("model_params") or {}).items():
        if isinstance(value, dict) and value.get("source") == "hydrofabric":
            value = props[value["from"]]
        model.set_value(name, np.atleast_1d(np.asarray(value, dtype=np.float64)))
    for name in [main] + out_vars:
        if name not in outputs:
            raise ReplayError(f"{cid}: output {name!r} is not an output of {params['python_type']}")

    series = {n: np.empty(len(times)) for n in dict.fromkeys([main] + out_vars)}
    # 2. the time loop
    for i, t0 in enumerate(times):
        now = model.get_current_time() * t_factor
        model.get_current_time()
        if not allow_exceed:
            model.get_end_time()
        n_in = model.get_input_item_count()
        in_names = model.get_input_var_names()
        if n_in != len(in_names):
            raise ReplayError(f"{cid}: get_input_item_count {n_in} != {len(in_names)} names")
        for name in in_names:
            itemsize = model.get_var_itemsize(name)
            units = model.get_var_units(name)
            vtype = model.get_var_type(name)
            nbytes = model.get_var_nbytes(name)
            if np.dtype(vtype).itemsize != itemsize:
                raise ReplayError(f"{cid}: {name} type {vtype!r} disagrees with itemsize "
                                  f"{itemsize} (this crashes ngen)")
            col = forcing.resolve(names_map.get(name, name))
            raw = forcing.value(col, t0, interval)
            if not forcing.units[col]:  # as ngen: no [unit] in the header -> raw value, warned
                if (cid, col) not in warned:
                    warned.add((cid, col))
                    warnings.warn(f"{forcing.path}: column {col!r} has no [unit] in its header; "
                                  f"ngen cannot convert it ('Unit conversion failure') and passes "
                                  f"the raw value to {name} [{units}], and so does this replay: "
                                  f"write the header as '{col} [{units}]'", stacklevel=2)
                value = raw
            else:
                value = convert(raw, forcing.units[col], units, f"{col} -> {name}")
            try:
                model.set_value(name, np.full(nbytes // itemsize, value, dtype=np.float64))
            except BmiError as exc:
                raise ReplayError(f"{cid}: {forcing.where(col, t0, interval)}: {exc}") from None
        step = model.get_time_step() * t_factor
        if abs(step - interval) < 1e-9:
            model.update()
        else:
            model.update_until((now - model_t0 + interval) / t_factor + model.get_start_time())
        for name in series:
            vtype = model.get_var_type(name)
            itemsize = model.get_var_itemsize(name)
            if np.dtype(vtype).itemsize != itemsize:
                raise ReplayError(f"{cid}: {name} type {vtype!r} disagrees with itemsize "
                                  f"{itemsize} (this crashes ngen)")
            dest = np.empty(1, dtype=vtype)
            model.get_value_at_indices(name, dest, np.array([0]))
            model.get_var_units(name)
            series[name][i] = float(dest[0])
    # 3. finalize
    model.finalize()
    main_m = convert(series[main], out_units[main], "m", f"main output {main}")
    return {"outputs": {n: series[n] for n in out_vars}, "main": series[main],
            "units": {n: out_units[n] for n in series}, "main_m": main_m,
            "flow_m3s": main_m * area * 1e6 / 3600.0,
            "flow_m3s_interval": main_m * area * 1e6 / interval, "area_km2": area,
            "header": list(params.get("output_header_fields") or out_vars)}


def _write_outputs(results: dict, cat_root: Path, nex_root: Path) -> None:
    """Write the catchment CSVs into ``cat_root`` and the nexus CSVs into ``nex_root``, each
    through a temporary file (an error or an interrupt leaves the previous run's files
    whole)."""
    stamps = [str(t).replace("T", " ") for t in results["times"]]
    for cid, r in results["catchments"].items():
        names = list(r["outputs"])
        header = r["header"] if len(r["header"]) == len(names) else names
        # ngen's formats: catchment rows with 9 significant digits, nexus rows "i, time, q"
        # with C++'s default 6 digits; LF line ends (byte-identical to ngen's files, checked)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["Time Step", "Time", *header])
        for i, s in enumerate(stamps):
            w.writerow([i, s, *(f"{r['outputs'][n][i]:.9g}" for n in names)])
        atomic_write_text(cat_root / f"{cid}.csv", buf.getvalue())
    for nex, flow in results["nexus"].items():
        atomic_write_text(nex_root / f"{nex}_output.csv",
                          "".join(f"{i}, {s}, {flow[i]:.6g}\n" for i, s in enumerate(stamps)))


def main(argv: list[str] | None = None, prog: str = "ngen-replay") -> int:
    """The ``ngen-replay`` command (also ``delta replay``)."""
    ap = argparse.ArgumentParser(
        prog=prog,
        description="Replay ngen's exact BMI call sequence over a realization JSON (bmi_python "
                    "formulations, CsvPerFeature forcing) without ngen; write per-catchment "
                    "and per-nexus output CSVs.")
    ap.add_argument("realization", help="realization JSON")
    ap.add_argument("--catchments", required=True,
                    help="catchment_data.geojson (areasqkm and toid properties)")
    ap.add_argument("--ids", default=None, help="comma-separated catchment ids (default: all)")
    ap.add_argument("--workdir", default=None,
                    help="resolve relative paths against this folder (default: the "
                         "realization's folder, as if ngen were started there)")
    ap.add_argument("--out", default=None, help="output folder (default: realization output.root)")
    ap.add_argument("--partition", default=None, metavar="FILE",
                    help="ngen partition file (from partitionGenerator): run only the share of "
                         "MPI rank --rank, as mpirun ngen would on that rank")
    ap.add_argument("--rank", type=int, default=None, metavar="R",
                    help="the rank to run, with --partition")
    args = ap.parse_args(argv)
    one_line_warnings()
    try:
        res = replay(args.realization, args.catchments,
                     ids=args.ids.split(",") if args.ids else None, workdir=args.workdir,
                     output_root=args.out, partition=args.partition, rank=args.rank)
    except (ReplayError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    interval = res["interval"]
    print(f"{len(res['times'])} intervals of {interval:g} s from {res['times'][0]}; "
          f"outputs in {res['output_root']}")
    if "rank" in res:
        print(f"rank {res['rank']} of {res['ranks']}: {len(res['catchments'])} catchments, "
              f"{len(res['nexus'])} nexus outputs, flow received from "
              f"{len(res['received'])} catchments of other ranks")
    for cid, r in res["catchments"].items():
        depth_mm = r["main_m"].sum() * 1e3
        print(f"  {cid}: area {r['area_km2']:.3f} km2, runoff {depth_mm:.3f} mm in all, "
              f"peak nexus flow {r['flow_m3s'].max():.4g} m3 s-1")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
