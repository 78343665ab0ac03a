"""Spawn latency of hepml-hub against a plain JupyterHub, on the same machine, in one run.

The benchmark starts two hubs one after the other, each with configurable-http-proxy on
free ports and its own temporary data directory:

``hepml``
    The project's own ``jupyterhub_config.py`` (through :class:`tests.hubprocess.HubProcess`),
    spawning with ``user_options`` ``{"stack": "cpu", "cores": 1, "memory": 2}``.
``plain``
    A plain JupyterHub with ``SimpleLocalProcessSpawner``, the same proxy, sqlite and an
    admin service token; its configuration is written to a temporary directory at run time.

A spawn's latency is the time from ``POST /hub/api/users/<name>/server`` until
``GET /hub/api/users/<name>`` reports the server ``ready`` (polled every 20 ms, the same
for both hubs). For each hub the benchmark measures

``first_spawn``
    the first spawn of ``--first-users`` fresh users (on hepml-hub running as root this
    includes creating the users' system accounts, which ``HubProcess.cleanup`` deletes), and
``respawn``
    ``--repeats`` spawns of an existing user, each after stopping its server and waiting
    until the hub reports it stopped.

The result is ``ratio = median(hepml respawn) / median(plain respawn)`` (the target is at
most 0.6). Results go to ``benchmarks/results/spawn_latency.json``, written atomically,
and a short table is printed.

Examples
--------
From the repository root::

    .venv/bin/python -m benchmarks.spawn_latency
    .venv/bin/python -m benchmarks.spawn_latency --repeats 20 --first-users 5
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jupyterhub

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.report import machine_info, write_report  # noqa: E402
from hubprocess import HubProcess  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "spawn_latency.json"
POLL_INTERVAL = 0.02
TARGET_RATIO = 0.6
HEPML_OPTIONS: dict[str, Any] = {"stack": "cpu", "cores": 1, "memory": 2}
SPAWN_TIMEOUT = 120.0
CHP = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"

#: The plain JupyterHub baseline. Ports and the data directory come from the environment
#: that :class:`HubProcess` sets, so the baseline also runs on free ports.
PLAIN_CONFIG = """\
\"\"\"Plain JupyterHub baseline of benchmarks.spawn_latency (written at run time).\"\"\"

import os
from pathlib import Path

c = get_config()  # noqa: F821

data = Path(os.environ["HEPML_DATA_DIR"])
(data / "homes").mkdir(parents=True, exist_ok=True)

c.JupyterHub.bind_url = os.environ["HEPML_BIND_URL"]
c.JupyterHub.hub_bind_url = os.environ["HEPML_HUB_BIND_URL"]
c.JupyterHub.db_url = "sqlite:///" + str(data / "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = str(data / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(data / "jupyterhub.pid")

c.ConfigurableHTTPProxy.command = [{chp!r}]
c.ConfigurableHTTPProxy.api_url = os.environ["HEPML_PROXY_API_URL"]
c.ConfigurableHTTPProxy.pid_file = str(data / "proxy.pid")

c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True

c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = str(data / "homes" / "{{username}}")
# Servers run as the hub's user; as root, Jupyter Server refuses to start without this.
c.Spawner.args = ["--allow-root"] if os.geteuid() == 0 else []

c.JupyterHub.services = []
c.JupyterHub.load_roles = []
"""


class PlainHub(HubProcess):
    """The baseline hub: no fork server to wait for."""

    def wait_forkserver(self, timeout: float) -> None:
        """Return at once (a plain hub has no fork server)."""


def summary(samples: list[float]) -> dict[str, Any]:
    """Median, min, max and all samples (seconds)."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
        "samples": samples,
    }


def timed_spawn(hub: HubProcess, name: str, options: dict[str, Any]) -> float:
    """Seconds from POSTing ``name``'s server until the hub reports it ready."""
    t0 = time.perf_counter()
    r = hub.request("POST", f"/users/{name}/server", json={"user_options": options})
    if r.status_code >= 400:
        raise RuntimeError(f"spawn of {name} refused: {r.status_code} {r.text}")
    deadline = t0 + SPAWN_TIMEOUT
    while True:
        server = hub.server_model(name)
        if server and server.get("ready"):
            return time.perf_counter() - t0
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{name}'s server not ready in {SPAWN_TIMEOUT} s:\n{hub.log_tail()}")
        if server is None and time.perf_counter() - t0 > 2:
            raise RuntimeError(f"{name}'s server went away:\n{hub.log_tail()}")
        time.sleep(POLL_INTERVAL)


def stop_and_wait(hub: HubProcess, name: str) -> None:
    """Stop ``name``'s server and wait until the hub reports it stopped."""
    hub.stop_server(name, timeout=SPAWN_TIMEOUT)
    if hub.server_model(name) is not None:
        raise TimeoutError(f"{name}'s server did not stop:\n{hub.log_tail()}")


def measure(
    hub: HubProcess,
    label: str,
    options: dict[str, Any],
    *,
    first_users: int,
    repeats: int,
    prefix: str,
) -> dict[str, Any]:
    """First spawns of fresh users, then ``repeats`` spawns of an existing user."""
    names = [f"{prefix}-{i}" for i in range(1, first_users + 1)]
    first: list[float] = []
    for name in names:
        hub.create_user(name)
        first.append(timed_spawn(hub, name, options))
        print(f"  {label} first spawn of {name}: {first[-1]:.3f} s", flush=True)
        stop_and_wait(hub, name)
    again: list[float] = []
    for i in range(repeats):
        again.append(timed_spawn(hub, names[0], options))
        print(f"  {label} respawn {i + 1}/{repeats}: {again[-1]:.3f} s", flush=True)
        stop_and_wait(hub, names[0])
    return {"first_spawn": summary(first), "respawn": summary(again)}


@contextlib.contextmanager
def running(make: Callable[[], HubProcess]) -> Iterator[HubProcess]:
    """Start a hub; stop it, its servers and remove its data afterwards, even on error."""
    hub = make()
    try:
        hub.start()
        yield hub
    finally:
        hub.cleanup()


def print_table(result: dict[str, Any]) -> None:
    """A short human-readable table of the medians and extremes (milliseconds)."""
    print(f"\n{'hub':<8}{'kind':<13}{'n':>4}{'median ms':>12}{'min ms':>10}{'max ms':>10}")
    for hub in ("plain", "hepml"):
        for kind in ("first_spawn", "respawn"):
            s = result["hubs"][hub][kind]
            print(
                f"{hub:<8}{kind:<13}{len(s['samples']):>4}{s['median'] * 1e3:>12.1f}"
                f"{s['min'] * 1e3:>10.1f}{s['max'] * 1e3:>10.1f}"
            )
    verdict = "meets" if result["meets_target"] else "misses"
    print(
        f"\nratio median(hepml)/median(plain), respawn: {result['ratio']:.3f} "
        f"({verdict} the target <= {TARGET_RATIO})"
    )
    print(f"ratio, first spawn: {result['first_spawn_ratio']:.3f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line options."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.spawn_latency",
        description="Spawn latency of hepml-hub against a plain JupyterHub.",
    )
    parser.add_argument(
        "--repeats", type=int, default=10, help="spawns of an existing user per hub (default: 10)"
    )
    parser.add_argument(
        "--first-users",
        type=int,
        default=3,
        help="fresh users whose first spawn is measured per hub (default: 3)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help=f"JSON results file (default: {RESULTS.relative_to(ROOT)})",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.first_users < 1:
        parser.error("--repeats and --first-users must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run both hubs one after the other, write the results, print the table."""
    args = parse_args(argv)
    run_id = secrets.token_hex(2)
    started = dt.datetime.now(dt.UTC)
    hubs: dict[str, dict[str, Any]] = {}

    with tempfile.TemporaryDirectory(prefix="hepml-bench-") as tmp:
        plain_config = Path(tmp) / "plain_jupyterhub_config.py"
        plain_config.write_text(PLAIN_CONFIG.format(chp=str(CHP)))
        print(f"plain JupyterHub {jupyterhub.__version__} (SimpleLocalProcessSpawner)", flush=True)
        with running(lambda: PlainHub(config=plain_config)) as hub:
            hubs["plain"] = measure(
                hub,
                "plain",
                {},
                first_users=args.first_users,
                repeats=args.repeats,
                prefix=f"plain{run_id}",
            )

    print("hepml-hub (jupyterhub_config.py)", flush=True)
    prefix = f"hepml{run_id}"
    # HubProcess.cleanup also deletes the system accounts created for this hub's users.
    with running(HubProcess) as hub:
        hubs["hepml"] = measure(
            hub,
            "hepml",
            HEPML_OPTIONS,
            first_users=args.first_users,
            repeats=args.repeats,
            prefix=prefix,
        )

    ratio = hubs["hepml"]["respawn"]["median"] / hubs["plain"]["respawn"]["median"]
    result = {
        "benchmark": "spawn_latency",
        "date": started.isoformat(timespec="seconds"),
        "machine": machine_info("jupyterhub"),
        "settings": {
            "repeats": args.repeats,
            "first_users": args.first_users,
            "poll_interval_s": POLL_INTERVAL,
            "hepml_user_options": HEPML_OPTIONS,
            "plain_spawner": "jupyterhub.spawner.SimpleLocalProcessSpawner",
        },
        "unit": "s",
        "hubs": hubs,
        "ratio": ratio,
        "first_spawn_ratio": hubs["hepml"]["first_spawn"]["median"]
        / hubs["plain"]["first_spawn"]["median"],
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
    }
    write_report(args.output, result)
    print_table(result)
    print(f"\nresults: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
