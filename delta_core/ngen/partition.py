"""ngen partition files: which catchments each MPI rank runs and which nexus flows cross ranks.

The format is the JSON that ngen's ``partitionGenerator`` writes and ``ngen`` reads as its sixth
argument under ``mpirun``::

    {"partitions": [
        {"id": 0, "cat-ids": ["cat-1", ...], "nex-ids": ["nex-2", ...],
         "remote-connections": [{"mpi-rank": 1, "nex-id": "nex-2", "cat-id": "cat-7",
                                 "cat-direction": "nex-to-dest_cat"}, ...]},
        ...]}

Partition ``i`` (the i-th entry, whose ``id`` is ``i``) is run by MPI rank ``i``. Its
``nex-ids`` are the nexuses its catchments drain to plus those draining into them. A remote
connection ``nex-to-dest_cat`` makes the rank a *sender* of that nexus: it sends the summed flow
of its own catchments draining there to ``mpi-rank``, which runs the downstream catchment
``cat-id``, and writes no output for the nexus. ``orig_cat-to-nex`` makes it the *receiver*:
it adds the flow of the remote catchment ``cat-id`` to its own and writes the nexus output.
A terminal nexus (no downstream catchment) fed from several ranks gets a sentinel downstream
catchment ``wb-TERMINAL_SENTINEL-<nexus id>``, absent from the hydrofabric, placed on the rank
that is to write it.

:func:`read_partitions` reads and checks such a file against a hydrofabric,
:func:`nexus_writers` says which rank writes each nexus and with which catchments' flow, and
:func:`make_partitions` / :func:`write_partitions` partition a hydrofabric in this format.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from delta_core.fileio import atomic_write_text
from delta_core.ngen.crosswalk import ReplayError

SENTINEL_PREFIX = "wb-TERMINAL_SENTINEL-"
SEND = "nex-to-dest_cat"
RECEIVE = "orig_cat-to-nex"


@dataclass(frozen=True)
class RemoteConnection:
    """One entry of a partition's ``remote-connections``.

    Attributes
    ----------
    rank : int
        The other rank.
    nexus : str
        The nexus whose flow crosses ranks.
    catchment : str
        The catchment on ``rank``: downstream of ``nexus`` (``SEND``) or draining into it
        (``RECEIVE``).
    direction : str
        ``SEND`` (``"nex-to-dest_cat"``) or ``RECEIVE`` (``"orig_cat-to-nex"``).
    """

    rank: int
    nexus: str
    catchment: str
    direction: str


@dataclass
class Partition:
    """The share of one MPI rank.

    Attributes
    ----------
    rank : int
    catchments : list of str
        ``cat-ids``, sentinels included.
    nexus : list of str
        ``nex-ids``.
    remote : list of RemoteConnection
    """

    rank: int
    catchments: list[str]
    nexus: list[str]
    remote: list[RemoteConnection] = field(default_factory=list)

    def senders(self) -> set[str]:
        """Nexuses this rank sends downstream and does not write."""
        return {c.nexus for c in self.remote if c.direction == SEND}


def is_sentinel(cid: str) -> bool:
    """Whether ``cid`` is a terminal-nexus sentinel (not a catchment of the hydrofabric)."""
    return str(cid).startswith(SENTINEL_PREFIX)


# -- reading and checking ---------------------------------------------------------------------
def read_partitions(path: str | Path, catchments: dict[str, dict]) -> list[Partition]:
    """Read an ngen partition file and check it against the hydrofabric.

    Parameters
    ----------
    path : path
        Partition JSON.
    catchments : dict
        ``{catchment id: properties}`` of the hydrofabric (``toid``: the nexus it drains to).

    Returns
    -------
    list of Partition
        Indexed by rank.

    Raises
    ------
    ReplayError
        A malformed file, a partition ``id`` that is not its position, a catchment not in the
        hydrofabric, in two partitions or in none, a rank that lacks the nexus one of its
        catchments drains to, or a nexus whose flow would be written partially or twice.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        parts = [_partition(p, i, path) for i, p in enumerate(doc["partitions"])]
    except ReplayError:
        raise
    except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ReplayError(f"{path} is not an ngen partition file ({type(exc).__name__}: {exc}); "
                          f"make it with ngen's partitionGenerator") from None
    if not parts:
        raise ReplayError(f"{path} holds no partitions")
    _check_catchments(parts, catchments, path)
    _check_connections(parts, path)
    nexus_writers(parts, catchments, path)
    return parts


def _partition(p: dict, position: int, path: Path) -> Partition:
    if int(p["id"]) != position:
        raise ReplayError(f"{path}: partition {position} has id {p['id']}; ngen runs the i-th "
                          f"partition on rank i, so ids must be 0, 1, ... in order")
    remote = p.get("remote-connections") or []
    return Partition(position, [str(c) for c in p["cat-ids"]], [str(n) for n in p["nex-ids"]],
                     [RemoteConnection(int(r["mpi-rank"]), str(r["nex-id"]), str(r["cat-id"]),
                                       str(r["cat-direction"])) for r in remote])


def _check_catchments(parts: list[Partition], catchments: dict[str, dict], path: Path) -> None:
    """Every catchment in exactly one partition, every partition's catchment known."""
    seen: dict[str, int] = {}
    for p in parts:
        for cid in p.catchments:
            if cid in seen:
                where = "twice in partition" if seen[cid] == p.rank else "in partitions"
                ranks = f"{p.rank}" if seen[cid] == p.rank else f"{seen[cid]} and {p.rank}"
                raise ReplayError(f"{path}: catchment {cid} is {where} {ranks}; each catchment "
                                  f"must be run by one rank")
            if cid not in catchments and not is_sentinel(cid):
                raise ReplayError(f"{path}: catchment {cid} of partition {p.rank} is not in the "
                                  f"hydrofabric; make the file from the same catchment geojson")
            seen[cid] = p.rank
        needed = {catchments[c].get("toid") for c in p.catchments if c in catchments} - {None, ""}
        missing = sorted(needed - set(p.nexus))
        if missing:
            raise ReplayError(f"{path}: partition {p.rank} lacks nex-ids {missing}, the nexuses "
                              f"its catchments drain to")
    left = sorted(set(catchments) - set(seen))
    if left:
        raise ReplayError(f"{path}: catchment(s) {left[:5]} of the hydrofabric are in no "
                          f"partition ({len(left)} in all): ngen would not run them")


def _check_connections(parts: list[Partition], path: Path) -> None:
    """Remote connections name existing ranks, a known direction and a catchment of the other
    rank."""
    members = [set(p.catchments) for p in parts]
    for p in parts:
        for c in p.remote:
            if not 0 <= c.rank < len(parts) or c.rank == p.rank:
                raise ReplayError(f"{path}: partition {p.rank} has a remote connection to rank "
                                  f"{c.rank}; ranks are 0..{len(parts) - 1}, other than its own")
            if c.direction not in (SEND, RECEIVE):
                raise ReplayError(f"{path}: partition {p.rank}: cat-direction "
                                  f"{c.direction!r} is neither {SEND!r} nor {RECEIVE!r}")
            if c.catchment not in members[c.rank]:
                raise ReplayError(f"{path}: partition {p.rank}: remote catchment {c.catchment} "
                                  f"is not in partition {c.rank}")


def nexus_writers(parts: list[Partition], catchments: dict[str, dict],
                  path: str | Path = "partition") -> dict[str, tuple[int, list[str]]]:
    """Which rank writes each nexus output, and whose flow it holds (as ngen under MPI).

    A rank writes every nexus of its ``nex-ids`` it does not send downstream; the flow is that of
    its own catchments draining there plus that of the remote catchments it receives.

    Parameters
    ----------
    parts : list of Partition
    catchments : dict
        ``{catchment id: properties}`` (``toid``).
    path : path
        The partition file, for messages.

    Returns
    -------
    dict
        ``{nexus id: (rank, sorted contributing catchment ids)}`` for every nexus some catchment
        drains to.

    Raises
    ------
    ReplayError
        If a nexus would be written by two ranks, or without some of its catchments' flow (ngen
        would then write partial flows, the last writer winning).
    """
    feeders = {nex: set(cats) for nex, cats in _feeders(catchments).items()}
    writes: dict[str, list[tuple[int, set[str]]]] = {}
    for p in parts:
        own = set(p.catchments)
        received: dict[str, set[str]] = {}
        for c in p.remote:
            if c.direction == RECEIVE:
                received.setdefault(c.nexus, set()).add(c.catchment)
        for nex in set(p.nexus) - p.senders():
            flow = (feeders.get(nex, set()) & own) | received.get(nex, set())
            if flow:
                writes.setdefault(nex, []).append((p.rank, flow))
    out = {}
    for nex, fed in sorted(feeders.items()):
        got = writes.get(nex, [])
        if len(got) != 1 or got[0][1] != fed:
            ranks = " and ".join(str(r) for r, _ in got) or "none"
            raise ReplayError(f"{path}: nexus {nex} drains {len(fed)} catchment(s) but rank(s) "
                              f"{ranks} would write it with {[len(f) for _, f in got]} of them: "
                              f"ngen would write partial flows; remake the file with "
                              f"partitionGenerator")
        out[nex] = (got[0][0], sorted(fed))
    return out


# -- making -----------------------------------------------------------------------------------
def make_partitions(catchments: dict[str, dict], nexus_toid: dict[str, str],
                    n: int) -> list[Partition]:
    """Split a hydrofabric into ``n`` partitions in ngen's format.

    Catchments are ordered outlet first, each followed by the catchments upstream of it (depth
    first), and cut into ``n`` runs of nearly equal length, so that a rank mostly holds whole
    sub-basins. Each terminal nexus gets a sentinel on the rank of its first catchment.

    Parameters
    ----------
    catchments : dict
        ``{catchment id: properties}`` (``toid``: the nexus it drains to).
    nexus_toid : dict
        ``{nexus id: downstream catchment id or ""}``.
    n : int
        Number of partitions (MPI ranks), 1 to the number of catchments.

    Returns
    -------
    list of Partition
    """
    if not 1 <= n <= len(catchments):
        raise ReplayError(f"cannot cut {len(catchments)} catchments into {n} partitions; give "
                          f"1 to {len(catchments)}")
    order = _outlet_first(catchments, nexus_toid)
    position = {c: i for i, c in enumerate(order)}
    cuts = [round(i * len(order) / n) for i in range(n + 1)]
    rank_of = {c: r for r in range(n) for c in order[cuts[r]:cuts[r + 1]]}
    feeders = _feeders(catchments)
    downstream = _downstream_of(catchments, nexus_toid)
    for nex, dest in downstream.items():
        if is_sentinel(dest):
            rank_of[dest] = rank_of[min(feeders[nex], key=position.__getitem__)]
    parts = [Partition(r, [], []) for r in range(n)]
    for cid, r in rank_of.items():
        parts[r].catchments.append(cid)
    for p in parts:
        p.nexus = _rank_nexus(p.catchments, catchments, downstream)
        p.remote = _remote(p, feeders, downstream, rank_of)
    return parts


def _feeders(catchments: dict[str, dict]) -> dict[str, list[str]]:
    """``{nexus: sorted ids of the catchments draining to it}``."""
    out: dict[str, list[str]] = {}
    for cid, props in sorted(catchments.items()):
        if props.get("toid"):
            out.setdefault(props["toid"], []).append(cid)
    return out


def _downstream_of(catchments: dict[str, dict], nexus_toid: dict[str, str]) -> dict[str, str]:
    """``{nexus: downstream catchment}`` for every nexus a catchment drains to (a sentinel for a
    terminal one)."""
    out = {}
    for props in catchments.values():
        nex = props.get("toid")
        if nex:
            dest = nexus_toid.get(nex, "")
            out[nex] = dest if dest in catchments else SENTINEL_PREFIX + nex
    return out


def _outlet_first(catchments: dict[str, dict], nexus_toid: dict[str, str]) -> list[str]:
    upstream: dict[str, list[str]] = {}
    for cid, props in sorted(catchments.items()):
        dest = nexus_toid.get(props.get("toid") or "", "")
        upstream.setdefault(dest if dest in catchments else "", []).append(cid)
    order: list[str] = []
    stack = list(reversed(upstream.get("", [])))
    while stack:
        cid = stack.pop()
        order.append(cid)
        stack.extend(reversed(upstream.get(cid, [])))
    if len(order) != len(catchments):
        raise ReplayError(f"the hydrofabric has a loop: {len(catchments) - len(order)} "
                          f"catchment(s) never reach an outlet")
    return order


def _rank_nexus(own: list[str], catchments: dict[str, dict],
                downstream: dict[str, str]) -> list[str]:
    """The nexuses the rank's catchments drain to and those draining into them."""
    mine = set(own)
    nexus = {catchments[c]["toid"] for c in own if catchments.get(c, {}).get("toid")}
    nexus |= {nex for nex, dest in downstream.items() if dest in mine}
    return sorted(nexus)


def _remote(p: Partition, feeders: dict[str, list[str]], downstream: dict[str, str],
            rank_of: dict[str, int]) -> list[RemoteConnection]:
    """The rank sends a nexus whose downstream catchment is elsewhere, and receives from the
    other ranks' catchments draining to a nexus whose downstream catchment it runs."""
    mine = set(p.catchments)
    out = []
    for nex in p.nexus:
        dest = downstream[nex]
        if dest not in mine:
            out.append(RemoteConnection(rank_of[dest], nex, dest, SEND))
            continue
        out += [RemoteConnection(rank_of[c], nex, c, RECEIVE)
                for c in feeders.get(nex, []) if c not in mine]
    return out


def write_partitions(path: str | Path, parts: list[Partition]) -> Path:
    """Write ``parts`` as an ngen partition file; returns the path."""
    doc = {"partitions": [
        {"id": p.rank, "cat-ids": p.catchments, "nex-ids": p.nexus,
         "remote-connections": [{"mpi-rank": c.rank, "nex-id": c.nexus, "cat-id": c.catchment,
                                 "cat-direction": c.direction} for c in p.remote]}
        for p in parts]}
    path = Path(path)
    atomic_write_text(path, json.dumps(doc, indent=1) + "\n")
    return path
