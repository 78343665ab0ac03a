"""Inventory parsing of recorded batch-system output (HTCondor and Kubernetes are not here)."""

from __future__ import annotations

import json

import pytest

from hepml_hub.session.inventory import (
    UnknownEntry,
    parse_condor_q,
    parse_pods,
    parse_squeue,
    shut_down,
)
from hepml_hub.session.notices import NoticeBoard

#: squeue -h -u alice -o "%i|%j|%T|%R|%M" on a busy site.
SQUEUE = """\
1001|dask-worker|PENDING|(Priority)|0:00
1002|dask-worker|PENDING|(QOSMaxJobsPerUserLimit)|0:00
1003|dask-worker|RUNNING|wn[012-013]|12:04
1004|train-resnet|RUNNING|wn001|3:01:00
1005_3|dask-worker|PENDING|(AssocGrpGRES)|0:00
"""

#: condor_q alice -json (trimmed ClassAds).
CONDOR_Q = json.dumps(
    [
        {"ClusterId": 77, "ProcId": 0, "JobStatus": 5, "HoldReason": "Error from slot1: OOM",
         "Cmd": "/bin/sh", "Args": "-c '/opt/py -m distributed.cli.dask_worker tls://s:8786'"},
        {"ClusterId": 78, "ProcId": 0, "JobStatus": 1, "LastRejMatchReason": "no match found",
         "Cmd": "/opt/py", "Arguments": "-m distributed.cli.dask_worker tls://s:8786"},
        {"ClusterId": 79, "ProcId": 0, "JobStatus": 2, "Cmd": "/opt/py",
         "Args": "-m distributed.cli.dask_worker tls://s:8786", "JobBatchName": "dask-worker"},
        {"ClusterId": 80, "ProcId": 0, "JobStatus": 2, "Cmd": "/usr/bin/root", "Args": "-b"},
    ]
)  # fmt: skip

#: kubectl get pods -l dask.org/component -o json (trimmed).
PODS = json.dumps(
    {
        "items": [
            {"metadata": {"name": "hepml-alice-worker-a", "labels": {
                "dask.org/cluster-name": "hepml-alice"}},
             "status": {"phase": "Pending", "conditions": [
                 {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}},
            {"metadata": {"name": "hepml-alice-worker-b", "labels": {
                "dask.org/cluster-name": "hepml-alice"}},
             "status": {"phase": "Running", "containerStatuses": [
                 {"state": {"running": {}}}]}},
        ]
    }
)  # fmt: skip


def test_squeue_keeps_dask_worker_jobs_with_their_reasons():
    entries = {e.id: e for e in parse_squeue(SQUEUE, current_ids={"1003"})}
    assert sorted(entries) == ["slurm:1001", "slurm:1002", "slurm:1003", "slurm:1005_3"]
    assert entries["slurm:1001"].reason == "Priority"
    assert entries["slurm:1002"].reason == "QOSMaxJobsPerUserLimit"
    assert entries["slurm:1005_3"].reason == "AssocGrpGRES"
    running = entries["slurm:1003"]
    assert (running.state, running.reason, running.session) == ("running", "", "current")
    assert running.detail["nodes"] == "wn[012-013]"
    assert {e.session for e in entries.values() if e.id != "slurm:1003"} == {"earlier"}
    assert parse_squeue(SQUEUE, set(), prefixes=("train-",))[0].id == "slurm:1004"


def test_condor_q_reports_hold_reasons_and_idle_jobs():
    entries = {e.id: e for e in parse_condor_q(CONDOR_Q, current_ids={"79.0"})}
    assert sorted(entries) == ["htcondor:77.0", "htcondor:78.0", "htcondor:79.0"]
    assert (entries["htcondor:77.0"].state, entries["htcondor:77.0"].reason) == (
        "held",
        "Error from slot1: OOM",
    )
    assert (entries["htcondor:78.0"].state, entries["htcondor:78.0"].reason) == (
        "pending",
        "no match found",
    )
    assert entries["htcondor:79.0"].session == "current"
    assert entries["htcondor:79.0"].name == "dask-worker"
    assert parse_condor_q("", set()) == []


def test_pods_report_phase_and_why():
    pending, running = parse_pods(PODS, current_names=set())
    assert (pending.state, pending.reason) == ("pending", "Pending: Unschedulable")
    assert (running.state, running.reason) == ("running", "")
    assert pending.detail["cluster"] == "hepml-alice"


@pytest.mark.parametrize("bad", ["slurm:1;rm -rf", "lsf:12", "dask:not-a-uuid", "pod:UPPER", ""])
def test_malformed_ids_are_refused_by_name(bad):
    import asyncio

    with pytest.raises(UnknownEntry, match="inventory entry"):
        asyncio.run(shut_down(bad))


def test_notice_board_validates_and_replaces_by_id():
    board = NoticeBoard(limit=2)
    board.post({"id": "a", "message": "first"})
    board.post({"id": "a", "message": "again", "type": "error"})
    assert [(n["id"], n["message"], n["type"]) for n in board.current()] == [
        ("a", "again", "error")
    ]
    board.post({"id": "b", "message": "b"})
    board.post({"id": "c", "message": "c", "expires": 10.0})
    assert [n["id"] for n in board.current(now=5.0)] == ["b", "c"]  # "a" fell off (limit 2)
    assert [n["id"] for n in board.current(now=11.0)] == ["b"]
    assert board.withdraw("b") and not board.withdraw("b")
    with pytest.raises(ValueError, match="'type' must be one of"):
        board.post({"message": "x", "type": "shout"})
    with pytest.raises(ValueError, match="'expires' must be a Unix time"):
        board.post({"message": "x", "expires": "soon"})
