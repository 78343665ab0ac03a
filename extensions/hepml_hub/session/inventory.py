"""Every Dask cluster and batch job of the user: what runs, what waits and why.

The inventory joins four sources:

- the clusters dask-labextension's manager holds in this server (``kind="dask"``);
- Slurm jobs of the user whose name starts with one of :data:`JOB_NAME_PREFIXES`
  (dask-jobqueue names its jobs ``dask-worker``), through ``squeue -u <user>``, with
  Slurm's pending reason (``%R``);
- HTCondor jobs running ``distributed.cli.dask_worker``, through ``condor_q -json``, with
  their ``HoldReason``;
- Dask worker pods (label ``dask.org/component``), through ``kubectl get pods -o json``,
  with the pod phase and the waiting reason of its container.

Jobs of a cluster that lives in this server are ``session="current"``; any other (left by
an earlier, stopped or killed session) is ``session="earlier"``. Commands that are not
installed are skipped. :func:`shut_down` ends one entry: ``cluster.close()`` through the
manager, ``scancel``, ``condor_rm`` or ``kubectl delete pod``.

Examples
--------
>>> line = "42|dask-worker|PENDING|(Resources)|0:00"
>>> entry = parse_squeue(line, current_ids=set())[0]
>>> entry.id, entry.state, entry.reason, entry.session
('slurm:42', 'pending', 'Resources', 'earlier')
>>> parse_squeue("7|my-own-job|RUNNING|node1|1:00", current_ids=set())
[]
"""

from __future__ import annotations

import getpass
import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "JOB_NAME_PREFIXES",
    "InventoryEntry",
    "UnknownEntry",
    "collect",
    "parse_condor_q",
    "parse_pods",
    "parse_squeue",
    "shut_down",
]

#: Batch job names that mark Dask workers (dask-jobqueue's default ``name``).
JOB_NAME_PREFIXES = ("dask-worker",)
#: ``squeue`` format: id, name, state, reason (pending) or node list (running), time.
SQUEUE_FORMAT = "%i|%j|%T|%R|%M"
_CONDOR_STATUS = {1: "idle", 2: "running", 3: "removed", 4: "completed", 5: "held", 7: "suspended"}
_ID = {
    "dask": re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    "slurm": re.compile(r"^\d+(_\d+)?$"),
    "htcondor": re.compile(r"^\d+\.\d+$"),
    "pod": re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
}
TIMEOUT_S = 15


class UnknownEntry(LookupError):
    """An inventory id that is malformed or names nothing of this user."""

    def __init__(self, entry_id: str, why: str):
        self.entry_id = entry_id
        super().__init__(f"inventory entry {entry_id!r}: {why}")


@dataclass(frozen=True)
class InventoryEntry:
    """One cluster or batch job.

    Attributes
    ----------
    id
        ``<kind>:<native id>``, e.g. ``slurm:42`` or ``dask:<uuid>``; what :func:`shut_down`
        takes.
    kind
        ``dask``, ``slurm``, ``htcondor`` or ``pod``.
    name
        Display name (cluster name, job name, pod name).
    state
        ``running``, ``pending``, ``held``...
    reason
        Why it waits (Slurm reason, HTCondor hold reason, pod waiting reason), else ``""``.
    session
        ``current`` (belongs to a cluster of this server) or ``earlier`` (a leftover).
    detail
        Extra facts: workers, cores, memory, dashboard link, elapsed time, node.
    """

    id: str
    kind: str
    name: str
    state: str
    reason: str = ""
    session: str = "current"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def _named_as_worker(name: str, prefixes: Iterable[str]) -> bool:
    return any(name.startswith(p) for p in prefixes)


def parse_squeue(
    text: str, current_ids: set[str], prefixes: Iterable[str] = JOB_NAME_PREFIXES
) -> list[InventoryEntry]:
    """Entries from ``squeue -h -o "%i|%j|%T|%R|%M"`` output (Dask worker jobs only)."""
    entries = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 5 or not _named_as_worker(parts[1], prefixes):
            continue
        job_id, name, state, where, elapsed = parts
        pending = state == "PENDING"
        entries.append(
            InventoryEntry(
                id=f"slurm:{job_id}",
                kind="slurm",
                name=name,
                state=state.lower(),
                reason=where.strip("()") if pending else "",
                session="current" if job_id in current_ids else "earlier",
                detail={"elapsed": elapsed} if pending else {"elapsed": elapsed, "nodes": where},
            )
        )
    return entries


def parse_condor_q(text: str, current_ids: set[str]) -> list[InventoryEntry]:
    """Entries from ``condor_q -json`` output (jobs running ``dask_worker`` only).

    >>> ads = '[{"ClusterId": 3, "ProcId": 0, "JobStatus": 5, "HoldReason": "disk quota",'
    >>> ads += ' "Args": "-m distributed.cli.dask_worker tls://h:1"}]'
    >>> e = parse_condor_q(ads, set())[0]
    >>> e.id, e.state, e.reason
    ('htcondor:3.0', 'held', 'disk quota')
    """
    ads = json.loads(text) if text.strip() else []
    entries = []
    for ad in ads:
        command = f"{ad.get('Cmd', '')} {ad.get('Args', '')} {ad.get('Arguments', '')}"
        if "dask_worker" not in command and "dask-worker" not in command:
            continue
        job_id = f"{ad['ClusterId']}.{ad['ProcId']}"
        state = _CONDOR_STATUS.get(int(ad.get("JobStatus", 0)), "unknown")
        reason = ad.get("HoldReason", "") if state == "held" else ""
        if state == "idle" and not reason:
            reason = ad.get("LastRejMatchReason", "") or "waiting for a matching slot"
        entries.append(
            InventoryEntry(
                id=f"htcondor:{job_id}",
                kind="htcondor",
                name=str(ad.get("JobBatchName") or f"job {job_id}"),
                state="pending" if state == "idle" else state,
                reason=reason,
                session="current" if job_id in current_ids else "earlier",
            )
        )
    return entries


def parse_pods(text: str, current_names: set[str]) -> list[InventoryEntry]:
    """Entries from ``kubectl get pods -l dask.org/component -o json`` output.

    >>> pods = {"items": [{"metadata": {"name": "w-1", "labels": {"dask.org/cluster-name": "c"}},
    ...     "status": {"phase": "Pending", "containerStatuses": [
    ...         {"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}]}
    >>> e = parse_pods(json.dumps(pods), set())[0]
    >>> e.id, e.state, e.reason
    ('pod:w-1', 'pending', 'Pending: ImagePullBackOff')
    """
    entries = []
    for pod in json.loads(text).get("items", []) if text.strip() else []:
        meta, status = pod.get("metadata", {}), pod.get("status", {})
        phase = status.get("phase", "Unknown")
        waiting = [
            c["state"]["waiting"].get("reason", "")
            for c in status.get("containerStatuses", []) or []
            if "waiting" in (c.get("state") or {})
        ]
        conditions = [
            c.get("reason", "")
            for c in status.get("conditions", []) or []
            if c.get("status") == "False" and c.get("reason")
        ]
        why = [w for w in waiting + conditions if w]
        entries.append(
            InventoryEntry(
                id=f"pod:{meta['name']}",
                kind="pod",
                name=meta["name"],
                state=phase.lower(),
                reason=f"{phase}: {', '.join(why)}" if why and phase != "Running" else "",
                session="current" if meta["name"] in current_names else "earlier",
                detail={"cluster": meta.get("labels", {}).get("dask.org/cluster-name", "")},
            )
        )
    return entries


def _run(*args: str) -> str | None:
    """stdout of a command, or ``None`` when it is not installed or fails."""
    if shutil.which(args[0]) is None:
        return None
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _manager():
    from dask_labextension.manager import manager

    return manager


def _dask_entries(manager) -> tuple[list[InventoryEntry], set[str]]:
    """The manager's clusters, and the batch job ids / pod names that belong to them."""
    entries, job_ids = [], set()
    for model in manager.list_clusters():
        cluster = manager._clusters.get(model["id"])  # the manager keeps no other accessor
        for worker in getattr(cluster, "workers", {}).values():
            job_id = getattr(worker, "job_id", None) or getattr(worker, "name", None)
            if job_id:
                job_ids.add(str(job_id))
        entries.append(
            InventoryEntry(
                id=f"dask:{model['id']}",
                kind="dask",
                name=model["name"],
                state="running",
                detail={
                    "workers": model["workers"],
                    "cores": model["cores"],
                    "memory": model["memory"],
                    "dashboard": model["dashboard_link"],
                    "scheduler": model["scheduler_address"],
                    "cluster": type(cluster).__name__,
                },
            )
        )
    return entries, job_ids


def _batch_entries(
    user: str, current: set[str], prefixes: Iterable[str] = JOB_NAME_PREFIXES
) -> list[InventoryEntry]:
    """Dask worker jobs and pods of ``user`` in every batch system installed here."""
    entries = []
    squeue = _run("squeue", "-h", "-u", user, "-o", SQUEUE_FORMAT)
    if squeue is not None:
        entries += parse_squeue(squeue, current, prefixes)
    condor = _run("condor_q", user, "-json")
    if condor is not None:
        entries += parse_condor_q(condor, current)
    if shutil.which("kubectl") is not None:
        pods = _run("kubectl", "get", "pods", "-l", "dask.org/component", "-o", "json")
        if pods is not None:
            entries += parse_pods(pods, current)
    return entries


def collect(
    manager=None, user: str | None = None, prefixes: Iterable[str] = JOB_NAME_PREFIXES
) -> list[InventoryEntry]:
    """The inventory of ``user`` (default: this process's user): clusters, then jobs."""
    manager = _manager() if manager is None else manager
    entries, current = _dask_entries(manager)
    return entries + _batch_entries(user or getpass.getuser(), current, prefixes)


async def shut_down(entry_id: str, manager=None) -> None:
    """End the cluster or job ``entry_id`` (``kind:native-id``) of this user.

    Batch jobs are ended only if the inventory lists them (Dask worker jobs of this user).

    Raises
    ------
    UnknownEntry
        The id is malformed, or names no cluster of this server and no Dask worker job
        of this user.
    RuntimeError
        The batch system refused (its message included).
    """
    kind, _, native = entry_id.partition(":")
    if kind not in _ID or not _ID[kind].match(native):
        raise UnknownEntry(entry_id, "expected dask:<uuid>, slurm:<job>, htcondor:<c.p>, pod:<n>")
    if kind == "dask":
        manager = _manager() if manager is None else manager
        if await manager.close_cluster(native) is None:
            raise UnknownEntry(entry_id, "no such Dask cluster in this server")
        return
    if entry_id not in {e.id for e in _batch_entries(getpass.getuser(), set())}:
        raise UnknownEntry(entry_id, f"not a Dask worker job of {getpass.getuser()}")
    command = {
        "slurm": ["scancel", native],
        "htcondor": ["condor_rm", native],
        "pod": ["kubectl", "delete", "pod", native, "--wait=false"],
    }[kind]
    if shutil.which(command[0]) is None:
        raise UnknownEntry(entry_id, f"{command[0]} is not installed here")
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {(done.stderr or done.stdout).strip()}")
