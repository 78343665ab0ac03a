"""A pre-imported launcher for single-user servers (a "zygote"), for fast spawns.

Starting ``jupyterhub-singleuser`` spends most of its time importing Jupyter Server,
JupyterLab and the server extensions. The fork server imports them once, then forks a
child per spawn request. The child drops to the user's uid/gid, takes the request's
environment, working directory and standard streams, and runs :func:`hepml_hub.launch.main`.

The hub starts it as a managed service; the spawner talks to it over a Unix socket that
only the hub's own user may use (mode 0600 in a 0700 directory, peer uid checked). If the
fork server is not running, the spawner falls back to starting a fresh interpreter.

Protocol: one JSON request per connection, with the standard streams passed as file
descriptors (``SCM_RIGHTS``); the reply is ``{"pid": N}`` or ``{"error": "..."}``.

Command line::

    python -m hepml_hub.forkserver --socket /path/to/forkserver.sock
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import glob
import importlib
import json
import os
import random
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

#: Modules every server needs; the enabled server extensions are added to these.
BASE_PRELOAD = (
    "jupyterhub.singleuser",
    "jupyter_server.serverapp",
    "hepml_hub.launch",
)
#: Environment variables read when ``jupyterhub.singleuser`` is imported: a request that
#: sets them cannot reuse the pre-imported module.
IMPORT_TIME_ENV = ("JUPYTERHUB_SINGLEUSER_APP", "JUPYTERHUB_SINGLEUSER_EXTENSION")
#: Environment variables the fork server keeps from the hub's (plus ``LC_*``).
KEEP_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "VIRTUAL_ENV", "HOME", "USER")
_MAX_REQUEST = 1 << 20


def clean_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` the fork server keeps: no tokens, no hub settings.

    >>> clean_environment({"PATH": "/bin", "JUPYTERHUB_API_TOKEN": "x", "LC_ALL": "C"})
    {'PATH': '/bin', 'LC_ALL': 'C'}
    """
    return {k: v for k, v in environ.items() if k in KEEP_ENV or k.startswith("LC_")}


def enabled_server_extensions(prefix: str = sys.prefix) -> list[str]:
    """Server extension modules enabled in this environment's ``jupyter_server_config.d``."""
    names: list[str] = []
    pattern = os.path.join(prefix, "etc/jupyter/jupyter_server_config.d/*.json")
    for path in sorted(glob.glob(pattern)):
        try:
            cfg = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        for name, enabled in cfg.get("ServerApp", {}).get("jpserver_extensions", {}).items():
            if enabled and name not in names:
                names.append(name)
    return names


def preload(modules: Sequence[str]) -> list[str]:
    """Import ``modules``; return those that failed (they are imported again in the child)."""
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            print(f"hepml-forkserver: cannot preload {name}: {exc}", file=sys.stderr)
            failed.append(name)
    return failed


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds = b"", []
    while not data.endswith(b"\n"):
        chunk, new_fds, _flags, _addr = socket.recv_fds(conn, 65536, 3)
        fds.extend(new_fds)
        if not chunk:
            break
        data += chunk
        if len(data) > _MAX_REQUEST:
            raise ValueError("request too large")
    return json.loads(data), fds


def _child(request: Mapping, fds: Sequence[int]) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setsid()
        for target, fd in zip((0, 1, 2), fds, strict=False):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        uid, gid = request.get("uid"), request.get("gid")
        if uid is not None and uid != os.getuid():
            os.setgroups(request.get("groups", [gid]))
            os.setgid(gid)
            os.setuid(uid)
        os.umask(0o022)
        os.environ.clear()
        os.environ.update(request["env"])
        extra_path = request["env"].get("PYTHONPATH")
        if extra_path:
            sys.path[:0] = [p for p in extra_path.split(os.pathsep) if p]
        os.chdir(request.get("cwd") or os.environ.get("HOME") or "/")
        random.seed()
        argv = list(request["argv"])
        sys.argv = ["jupyterhub-singleuser", *argv]
        from hepml_hub.launch import main

        code = main(argv) or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _refusal(request: Mapping) -> str | None:
    """Why ``request`` cannot be served by a forked child (None: it can)."""
    if os.getuid() == 0 and not request.get("uid"):
        return "refusing to start a server as root"
    if any(k in request.get("env", {}) for k in IMPORT_TIME_ENV):
        return f"requests setting {IMPORT_TIME_ENV} need a fresh interpreter"
    return None


def _reply(conn: socket.socket, answer: dict) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(answer).encode() + b"\n")


def _handle(conn: socket.socket, listener: socket.socket) -> None:
    """Fork a child that reads, checks and serves the request on ``conn``.

    The fork server itself never reads a request: requests carry users' API tokens, and
    whatever the fork server's memory holds, every later server inherits.
    """
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, peer_uid, _gid = struct.unpack("3i", creds)
    if peer_uid not in (0, os.getuid()):
        _reply(conn, {"error": f"uid {peer_uid} may not use this fork server"})
        return
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    if os.fork() != 0:
        return  # the child answers
    listener.close()
    try:
        request, fds = _recv_request(conn)
        refusal = _refusal(request)
    except Exception as exc:
        refusal, fds = f"bad request: {type(exc).__name__}: {exc}", []
    if refusal:
        _reply(conn, {"error": refusal})
        os._exit(1)
    _reply(conn, {"pid": os.getpid()})
    conn.close()
    _child(request, fds)


def serve(socket_path: str, modules: Sequence[str]) -> None:
    """Preload ``modules`` and answer spawn requests on ``socket_path`` forever."""
    tic = time.perf_counter()
    preload(modules)
    gc.collect()
    gc.freeze()  # keep preloaded objects out of the children's copy-on-write pages
    if threading.active_count() > 1:
        print(
            f"hepml-forkserver: preloading started {threading.active_count() - 1} thread(s);"
            " forking anyway",
            file=sys.stderr,
        )
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped automatically
    path = Path(socket_path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    listener.listen(16)
    print(
        f"hepml-forkserver: ready on {path} ({len(modules)} modules preloaded in "
        f"{time.perf_counter() - tic:.1f} s)",
        file=sys.stderr,
        flush=True,
    )
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                _handle(conn, listener)
            except Exception as exc:
                _reply(conn, {"error": f"{type(exc).__name__}: {exc}"})


def request_spawn(
    socket_path: str,
    *,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    uid: int | None = None,
    gid: int | None = None,
    groups: Sequence[int] = (),
    timeout: float = 10.0,
) -> int:
    """Ask the fork server at ``socket_path`` to start a server; return its pid.

    The caller's standard streams are handed to the child. Raises ``OSError`` when the
    fork server cannot be reached and ``RuntimeError`` when it refuses.
    """
    payload = (
        json.dumps(
            {
                "argv": list(argv),
                "env": dict(env),
                "cwd": cwd,
                "uid": uid,
                "gid": gid,
                "groups": list(groups),
            }
        ).encode()
        + b"\n"
    )
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            socket.send_fds(sock, [payload], [devnull, 1, 2])
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                reply += chunk
    finally:
        os.close(devnull)
    answer = json.loads(reply or b"{}")
    if "pid" not in answer:
        raise RuntimeError(f"fork server refused: {answer.get('error', 'no answer')}")
    return int(answer["pid"])


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket", required=True, help="path of the Unix socket to listen on")
    parser.add_argument(
        "--preload",
        action="append",
        default=[],
        help="extra module to import before forking (repeatable)",
    )
    args = parser.parse_args(argv)
    clean = clean_environment(os.environ)
    if clean != dict(os.environ):
        # Started by the hub with its service token in the environment: start again without
        # it, so that neither this process nor any server forked from it ever holds it.
        os.execve(
            sys.executable, [sys.executable, "-m", "hepml_hub.forkserver", *sys.argv[1:]], clean
        )
    modules = [*BASE_PRELOAD, *enabled_server_extensions(), *args.preload]
    serve(args.socket, list(dict.fromkeys(modules)))


if __name__ == "__main__":
    main()
