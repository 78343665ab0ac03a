"""The GPU culler: a hub-managed service that applies :mod:`hepml_hub.gpu_culling`.

Every ``--every`` seconds it lists the running servers through the hub's REST API (with
their spawner state, where :class:`~hepml_hub.spawner.HepmlSpawner` keeps ``gpu_ids``),
reads the utilisation of each server's GPUs through NVML and

- busy: reports activity to the hub, so jupyterhub-idle-culler leaves it alone too;
- warn: posts a notice to the server (``POST <server>/hepml/notices``), which JupyterLab
  shows as a notification that stays until dismissed;
- stop: stops the server (``DELETE /hub/api/users/<name>/server``).

:func:`hepml_hub.embedded.configure` adds it as the ``gpu-culler`` service with the scopes
it needs (:data:`SCOPES`) when ``HepmlHub.gpu_cull_timeout`` is positive.

Command line::

    python -m hepml_hub.gpu_culler --timeout=1800 --warn=600 --every=60 \\
        --busy-percent=5 --public-url=http://127.0.0.1:8000/
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

import requests

from hepml_hub.gpu_culling import (
    Action,
    Decision,
    GpuCullPolicy,
    GpuCullTracker,
    GpuUtilisationSource,
    NvmlUtilisation,
)

__all__ = ["SCOPES", "GpuServer", "HubApi", "cull_round", "main", "warning_text"]

log = logging.getLogger("hepml_hub.gpu_culler")

#: Scopes of the service's role.
SCOPES = [
    "list:users",
    "read:users:activity",
    "read:servers",
    "admin:server_state",
    "delete:servers",
    "access:servers",
    "users:activity",
]
TIMEOUT_S = 30


@dataclass(frozen=True)
class GpuServer:
    """A running server and the GPUs its spawner holds."""

    user: str
    name: str  #: server name, ``""`` for the default server
    url: str  #: path on the proxy, e.g. ``/user/alice/``
    gpu_ids: tuple[int, ...]

    @property
    def key(self) -> str:
        """``user/name``, the tracker's key."""
        return f"{self.user}/{self.name}"


def warning_text(decision: Decision) -> str:
    """The notice a warned session shows.

    >>> from hepml_hub.gpu_culling import Action, Decision
    >>> warning_text(Decision(Action.WARN, idle_for=1500, stop_in=300))
    'The GPUs of this session have been idle for 25 minutes. The server will be stopped in 5 minutes unless a GPU is used. Save your work.'
    """  # noqa: E501
    idle, left = round(decision.idle_for / 60), max(1, round((decision.stop_in or 0) / 60))
    return (
        f"The GPUs of this session have been idle for {idle} minutes. The server will be "
        f"stopped in {left} minutes unless a GPU is used. Save your work."
    )


class HubApi:
    """The few hub REST calls the culler makes, with the service's token."""

    def __init__(self, api_url: str, public_url: str, token: str) -> None:
        self.api_url = api_url.rstrip("/")
        self.public_url = public_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {token}"

    def _call(self, method: str, url: str, **kwargs) -> requests.Response:
        r = self.session.request(method, url, timeout=TIMEOUT_S, **kwargs)
        r.raise_for_status()
        return r

    def servers(self) -> list[GpuServer]:
        """Running (ready) servers with the GPU ids of their spawner state."""
        users = self._call("GET", f"{self.api_url}/users", params={"state": "ready"}).json()
        found = []
        for user in users:
            for name, server in (user.get("servers") or {}).items():
                if not server.get("ready"):
                    continue
                ids = (server.get("state") or {}).get("gpu_ids") or []
                found.append(GpuServer(user["name"], name, server["url"], tuple(map(int, ids))))
        return found

    def _server_path(self, server: GpuServer) -> str:
        user = quote(server.user, safe="")
        return (
            f"/users/{user}/servers/{quote(server.name, safe='')}"
            if server.name
            else (f"/users/{user}/server")
        )

    def warn(self, server: GpuServer, message: str, notice_id: str) -> None:
        """Post a warning notice to the server (shown in JupyterLab)."""
        self._call(
            "POST",
            f"{self.public_url}{server.url.rstrip('/')}/hepml/notices",
            json={"id": notice_id, "message": message, "type": "warning"},
        )

    def stop(self, server: GpuServer) -> None:
        """Ask the hub to stop the server."""
        self._call("DELETE", f"{self.api_url}{self._server_path(server)}")

    def report_activity(self, server: GpuServer, when: datetime) -> None:
        """Record activity on the server (busy GPUs count as use)."""
        stamp = when.astimezone(UTC).isoformat().replace("+00:00", "Z")
        body = {"servers": {server.name: {"last_activity": stamp}}, "last_activity": stamp}
        self._call(
            "POST", f"{self.api_url}/users/{quote(server.user, safe='')}/activity", json=body
        )


def cull_round(
    hub: HubApi, tracker: GpuCullTracker, source: GpuUtilisationSource, now: float | None = None
) -> dict[str, Decision]:
    """One round: observe every running server that holds GPUs and act on the decision."""
    now = time.time() if now is None else now
    servers = [s for s in hub.servers() if s.gpu_ids]
    tracker.forget(s.key for s in servers)
    decisions = {}
    for server in servers:
        decision = tracker.observe(server.key, server.gpu_ids, source, now)
        decisions[server.key] = decision
        try:
            if decision.action is Action.BUSY:
                hub.report_activity(server, datetime.fromtimestamp(now, UTC))
            elif decision.action is Action.WARN:
                log.info(
                    "warning %s: GPUs %s idle %.0fs", server.key, server.gpu_ids, decision.idle_for
                )
                hub.warn(server, warning_text(decision), f"gpu-idle-{int(now)}")
            elif decision.action is Action.STOP:
                log.info(
                    "stopping %s: GPUs %s idle %.0fs", server.key, server.gpu_ids, decision.idle_for
                )
                hub.stop(server)
        except requests.RequestException as exc:
            log.warning("%s: %s failed: %s", server.key, decision.action.value, exc)
    log.info("checked %d GPU server(s)", len(servers))
    return decisions


def main(argv: Sequence[str] | None = None) -> int:
    """Run the culler until killed (the hub stops its managed services)."""
    parser = argparse.ArgumentParser(prog="python -m hepml_hub.gpu_culler")
    parser.add_argument("--timeout", type=float, required=True, help="GPU-idle seconds")
    parser.add_argument("--warn", type=float, required=True, help="seconds of warning")
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--busy-percent", type=float, default=5.0)
    parser.add_argument("--public-url", required=True, help="the proxy's URL")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="[%(levelname)1.1s %(asctime)s gpu-culler] %(message)s"
    )
    policy = GpuCullPolicy(args.timeout, args.warn, args.busy_percent)
    hub = HubApi(
        os.environ["JUPYTERHUB_API_URL"], args.public_url, os.environ["JUPYTERHUB_API_TOKEN"]
    )
    tracker, source = GpuCullTracker(policy), NvmlUtilisation()
    log.info(
        "GPU-idle timeout %.0fs, warning %.0fs before, every %.0fs",
        policy.idle_timeout,
        policy.warn_before,
        args.every,
    )
    while True:
        try:
            cull_round(hub, tracker, source)
        except requests.RequestException as exc:
            log.warning("hub API unavailable: %s", exc)
        time.sleep(args.every)


if __name__ == "__main__":
    sys.exit(main())
