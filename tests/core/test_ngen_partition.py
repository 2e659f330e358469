"""ngen partition files (delta_core.ngen.partition) and ``ngen-replay --partition FILE --rank R``:
each rank's share of a partitioned run writes what the serial run writes for its catchments and
nexuses, and the ranks together write every file of the serial run.

The synthetic hydrofabric: 24 catchments in two basins, binary trees draining to the terminal
nexuses nex-1001 (cat-1..16) and nex-1002 (cat-17..24); catchment ``k`` drains to the nexus
``nex-<p>`` that flows into its parent ``cat-<p>``. ``partition_2_ngen.json`` in
tests/data/ngen_partition is ngen's own partitionGenerator's output for it.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from delta_core.ngen import partition as P
from delta_core.ngen import replay as R
from delta_core.ngen.crosswalk import ReplayError
from delta_core.ngen.hydrofabric import write_feature_collection
from conftest import DATA

START, END = "2015-12-01 00:00:00", "2015-12-02 23:00:00"
NGEN_PARTITION = DATA / "ngen_partition" / "partition_2_ngen.json"


def parent(k: int) -> int | None:
    """The catchment ``cat-k`` drains into (None: an outlet)."""
    if k <= 16:
        return k // 2 if k > 1 else None
    return {19: 17, 20: 17, 21: 18, 22: 18, 23: 19, 24: 21}.get(k)


def write_hydrofabric(out: Path) -> Path:
    """catchment_data.geojson and nexus_data.geojson of the 24 catchments; returns the first."""
    cats, nexus = [], {}
    for k in range(1, 25):
        p = parent(k)
        nex = f"nex-{p}" if p else f"nex-{1001 if k == 1 else 1002}"
        nexus[nex] = f"cat-{p}" if p else ""
        lon, lat = -80.0 + 0.05 * (k % 6), 35.0 + 0.05 * (k // 6)
        ring = [[lon, lat], [lon + 0.05, lat], [lon + 0.05, lat + 0.05], [lon, lat + 0.05],
                [lon, lat]]
        area = (0.05 * 111.32) ** 2 * math.cos(math.radians(lat + 0.025))
        cats.append({"type": "Feature", "id": f"cat-{k}",
                     "properties": {"areasqkm": round(area, 6), "toid": nex},
                     "geometry": {"type": "Polygon", "coordinates": [ring]}})
    nex_features = [{"type": "Feature", "id": n, "properties": {"toid": t},
                     "geometry": {"type": "Point", "coordinates": [-80.0, 35.0]}}
                    for n, t in sorted(nexus.items())]
    out.mkdir(parents=True, exist_ok=True)
    write_feature_collection(out / "nexus_data.geojson", "nexus_data", nex_features)
    return write_feature_collection(out / "catchment_data.geojson", "catchment_data", cats)


def write_forcing(out: Path) -> None:
    """Hourly forcing (mm s-1, K) for START..END, a different storm for each catchment."""
    (out / "forcing").mkdir(parents=True, exist_ok=True)
    t0 = np.datetime64(START.replace(" ", "T"))
    for k in range(1, 25):
        with open(out / "forcing" / f"cat-{k}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["time", "precip_rate [mm s-1]", "TMP_2maboveground [K]"])
            for h in range(48):
                t = str(t0 + np.timedelta64(h, "h")).replace("T", " ")
                rain = (2.0 + k % 5) / 3600 if k % 4 <= h % 24 < 8 + k % 7 else 0.0
                w.writerow([t, rain, 278.15 + 3 * math.sin(h + k)])


@pytest.fixture(scope="module")
def realization(tmp_path_factory) -> Path:
    """The dHBV realization of the 24 catchments (our writer, a random bundle), 48 hours."""
    from bmi_dhbv import realization as writer
    from dhbv_helpers import make_random_bundle

    root = tmp_path_factory.mktemp("part")
    geo = write_hydrofabric(root / "hf")
    write_forcing(root / "hf")
    out = root / "r"
    bundle = make_random_bundle(root / "bundle.pt")
    assert writer.main(["--catchments", str(geo), "--stand-in", "03439000", "--out", str(out),
                        "--start", START, "--end", END, "--file-pattern", "{{id}}.csv",
                        "--cold-start", "--bundle", str(bundle)]) == 0
    return out


@pytest.fixture(scope="module")
def serial(realization) -> dict:
    """The serial replay, written to <realization>/serial."""
    return R.replay(realization / "realization.json", realization / "catchment_data.geojson",
                    output_root=realization / "serial")


def test_each_rank_replays_the_real_mpi_engine_byte_for_byte(tmp_path):
    """The 48-hour realization on the shipped hourly bundle: ``--partition --rank`` of each rank
    writes exactly the files that ``mpirun -n 2`` ngen wrote with partitionGenerator's file
    (tests/data/ngen_partition/README.md), byte for byte."""
    import gzip

    from bmi_dhbv import realization as writer

    geo = write_hydrofabric(tmp_path / "hf")
    write_forcing(tmp_path / "hf")
    real = tmp_path / "r"
    assert writer.main(["--catchments", str(geo), "--stand-in", "03439000", "--out", str(real),
                        "--start", START, "--end", END, "--file-pattern", "{{id}}.csv",
                        "--cold-start"]) == 0
    _run_ranks(real, NGEN_PARTITION, tmp_path / "mpi")
    expected = {p.name[:-3]: gzip.decompress(p.read_bytes())
                for p in (NGEN_PARTITION.parent / "mpi_2").glob("*.csv.gz")}
    assert len(expected) == 38 and _files(tmp_path / "mpi") == expected


def _catchments(real: Path) -> dict[str, dict]:
    geo = json.loads((real / "catchment_data.geojson").read_text())
    return {f["id"]: f["properties"] for f in geo["features"]}


def _ours(real: Path, path: Path, n: int = 2) -> Path:
    nexus = json.loads((real / "nexus_data.geojson").read_text())
    toid = {f["id"]: f["properties"]["toid"] for f in nexus["features"]}
    return P.write_partitions(path, P.make_partitions(_catchments(real), toid, n))


def _run_ranks(real: Path, partition: Path, out: Path) -> list[dict]:
    parts = json.loads(partition.read_text())["partitions"]
    return [R.replay(real / "realization.json", real / "catchment_data.geojson",
                     output_root=out, partition=partition, rank=r) for r in range(len(parts))]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.csv")}


@pytest.mark.parametrize("which", ["ngen", "ours"])
def test_each_rank_writes_what_the_serial_run_writes(realization, serial, tmp_path, which):
    """Every rank's catchment and nexus files are byte-identical to the serial run's, the ranks
    run disjoint sets of catchments covering all 24, and together write every serial file."""
    partition = NGEN_PARTITION if which == "ngen" else _ours(realization, tmp_path / "p.json")
    ranks = _run_ranks(realization, partition, tmp_path / "mpi")
    owned = [set(r["catchments"]) for r in ranks]
    assert not owned[0] & owned[1] and owned[0] | owned[1] == set(serial["catchments"])
    assert len(serial["catchments"]) == 24 and all(owned)
    written = [set(r["nexus"]) for r in ranks]
    assert not written[0] & written[1] and written[0] | written[1] == set(serial["nexus"])
    assert any(r["received"] for r in ranks)  # some nexus flow crosses ranks
    for r in ranks:
        for cid, res in r["catchments"].items():
            np.testing.assert_array_equal(res["main"], serial["catchments"][cid]["main"])
        for nex, flow in r["nexus"].items():
            np.testing.assert_allclose(flow, serial["nexus"][nex], rtol=1e-14, atol=0)
    assert _files(tmp_path / "mpi") == _files(realization / "serial")


def test_the_cli_runs_one_rank_and_honours_rank_subdir(realization, serial, tmp_path, capsys):
    """``--partition FILE --rank 1`` writes rank 1's files only; with ``output.catchment`` /
    ``output.nexus`` ``rank_subdir`` they go to ``rank_1/`` as in ngen."""
    real = json.loads((realization / "realization.json").read_text())
    real.setdefault("output", {}).update(catchment={"rank_subdir": True},
                                         nexus={"rank_subdir": True})
    path = realization / "realization_rank_subdir.json"
    path.write_text(json.dumps(real))
    out = tmp_path / "out"
    assert R.main([str(path), "--catchments", str(realization / "catchment_data.geojson"),
                   "--out", str(out), "--partition", str(NGEN_PARTITION), "--rank", "1"]) == 0
    assert "rank 1 of 2:" in capsys.readouterr().out
    cats = _catchments(realization)
    parts = P.read_partitions(NGEN_PARTITION, cats)
    writers = P.nexus_writers(parts, cats)
    expected = {f"rank_1/{c}.csv" for c in parts[1].catchments if not P.is_sentinel(c)}
    expected |= {f"rank_1/{n}_output.csv" for n, (r, _) in writers.items() if r == 1}
    got = _files(out)
    assert set(got) == expected
    ref = _files(realization / "serial")
    assert all(got[name] == ref[name.split("/")[1]] for name in got)


def test_ngen_partition_file_reads_as_written(realization):
    """ngen's partitionGenerator output: one sentinel per terminal nexus, each catchment on one
    rank, and each nexus written by one rank with all its catchments' flow."""
    cats = _catchments(realization)
    parts = P.read_partitions(NGEN_PARTITION, cats)
    assert [p.rank for p in parts] == [0, 1]
    sentinels = sorted(c for p in parts for c in p.catchments if P.is_sentinel(c))
    assert sentinels == ["wb-TERMINAL_SENTINEL-nex-1001", "wb-TERMINAL_SENTINEL-nex-1002"]
    writers = P.nexus_writers(parts, cats)
    assert writers["nex-1"][1] == ["cat-2", "cat-3"]
    assert set(writers) == {c["toid"] for c in cats.values()}


def _cli_error(realization, partition: Path, capsys, *extra: str) -> str:
    assert R.main([str(realization / "realization.json"), "--catchments",
                   str(realization / "catchment_data.geojson"), "--partition", str(partition),
                   *extra]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def _edited(tmp_path: Path, edit) -> Path:
    doc = json.loads(NGEN_PARTITION.read_text())
    edit(doc["partitions"])
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("edit, extra, match", [
    (lambda p: p[0]["cat-ids"].append("cat-99"), ["--rank", "0"],
     "catchment cat-99 of partition 0 is not in the hydrofabric"),
    (lambda p: p[1]["cat-ids"].append(p[0]["cat-ids"][-1]), ["--rank", "0"],
     "is in partitions 0 and 1"),
    (lambda p: p[0]["cat-ids"].append(p[0]["cat-ids"][0]), ["--rank", "0"],
     "twice in partition 0"),
    (lambda p: p[1]["cat-ids"].remove("cat-2"), ["--rank", "0"],
     "['cat-2'] of the hydrofabric are in no partition"),
    (lambda p: None, ["--rank", "2"], "--rank 2: "),
    (lambda p: None, [], "--partition needs --rank R: "),
    (lambda p: None, ["--rank", "0", "--ids", "cat-1"], "--ids and --partition exclude"),
    (lambda p: p[1].update(id=0), ["--rank", "0"], "partition 1 has id 0"),
    (lambda p: p.__delitem__(1), ["--rank", "0"], "of the hydrofabric are in no partition"),
])
def test_partition_errors_are_one_line(realization, tmp_path, capsys, edit, extra, match):
    err = _cli_error(realization, _edited(tmp_path, edit), capsys, *extra)
    assert match in err, err


def test_a_terminal_nexus_fed_from_two_ranks_needs_its_sentinel():
    """A terminal nexus fed from two ranks is written by the rank holding its sentinel, with
    both catchments' flow (our partitioner places it as ngen's does); without the sentinel both
    ranks would write it with partial flows: refused, naming the nexus."""
    cats = {"cat-1": {"toid": "nex-9"}, "cat-2": {"toid": "nex-9"}}
    parts = P.make_partitions(cats, {"nex-9": ""}, 2)
    sentinel = "wb-TERMINAL_SENTINEL-nex-9"
    assert [p.catchments for p in parts] == [["cat-1", sentinel], ["cat-2"]]
    assert parts[0].remote == [P.RemoteConnection(1, "nex-9", "cat-2", P.RECEIVE)]
    assert parts[1].remote == [P.RemoteConnection(0, "nex-9", sentinel, P.SEND)]
    assert P.nexus_writers(parts, cats) == {"nex-9": (0, ["cat-1", "cat-2"])}
    bare = [P.Partition(0, ["cat-1"], ["nex-9"]), P.Partition(1, ["cat-2"], ["nex-9"])]
    with pytest.raises(ReplayError, match=r"nexus nex-9 drains 2 catchment\(s\) but rank\(s\) "
                                          r"0 and 1 would write it"):
        P.nexus_writers(bare, cats)


def test_make_partitions_checks(realization):
    cats = _catchments(realization)
    with pytest.raises(ReplayError, match="cannot cut 24 catchments into 25"):
        P.make_partitions(cats, {}, 25)
    parts = P.make_partitions(cats, {"nex-1": "cat-1"}, 1)
    assert len(parts) == 1 and not parts[0].remote


def test_a_forcing_pattern_matching_two_files_is_refused(realization, tmp_path, capsys):
    """``.*{{id}}.*.csv`` matches cat-10.csv for cat-1, and ngen reads whichever file the
    directory lists first (in the real engine cat-1 and cat-2 ran on other catchments'
    forcing): the writer and the replay refuse it in one line naming the fix."""
    from bmi_dhbv import realization as writer

    assert writer.main(["--catchments", str(realization / "catchment_data.geojson"),
                        "--stand-in", "03439000", "--out", str(tmp_path / "w"), "--start", START,
                        "--end", END]) != 0
    err = capsys.readouterr().err
    assert "matches 11 files for cat-1 (cat-1.csv, cat-10.csv, cat-11.csv)" in err
    assert len(err.strip().splitlines()) == 1 and "--file-pattern '{{id}}.csv'" in err
    real = json.loads((realization / "realization.json").read_text())
    real["global"]["forcing"]["file_pattern"] = ".*{{id}}.*.csv"
    path = realization / "realization_ambiguous.json"
    path.write_text(json.dumps(real))
    with pytest.raises(ReplayError, match=r"matches 11 files for cat-1 .*'\{\{id\}\}.csv'"):
        R.replay(path, realization / "catchment_data.geojson", write=False)
