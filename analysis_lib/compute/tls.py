"""Per-cluster temporary TLS certificates for client, scheduler and workers.

:class:`TemporaryTLS` makes a fresh self-signed key and certificate
(:meth:`distributed.security.Security.temporary`), writes them as ``0600`` files into a new
``0700`` directory and returns a :class:`~distributed.security.Security` that names the
files, so batch jobs on other nodes read them from there (the directory must be on a
filesystem the nodes share). :meth:`TemporaryTLS.cleanup` removes the directory; it also
runs when the object is garbage-collected or the interpreter exits. A process killed before
it could clean up leaves its directory behind: directories are named
``cluster-<host>-<pid>-<random>``, and each new one removes those of dead processes of the
same host.

Examples
--------
>>> import os, stat, tempfile
>>> base = tempfile.mkdtemp()
>>> tls = TemporaryTLS(base)
>>> sorted(os.listdir(tls.directory))
['ca.pem', 'cert.pem', 'key.pem']
>>> oct(stat.S_IMODE(os.stat(tls.directory / "key.pem").st_mode))
'0o600'
>>> tls.security.require_encryption
True
>>> tls.cleanup()
>>> tls.directory.exists()
False
>>> os.rmdir(base)
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import weakref
from pathlib import Path

from distributed.security import Security

__all__ = ["TemporaryTLS"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphans(base: Path) -> None:
    """Remove directories left by dead processes of this host."""
    host = socket.gethostname()
    for path in base.glob(f"cluster-{host}-*-*"):
        pid = path.name[len(f"cluster-{host}-") :].split("-", 1)[0]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class TemporaryTLS:
    """A key, a certificate and its CA file in a private directory under ``base``.

    Parameters
    ----------
    base
        Parent directory (created ``0700`` if missing; ``~`` is expanded).
    """

    def __init__(self, base: str | os.PathLike) -> None:
        base = Path(os.path.expandvars(os.path.expanduser(os.fspath(base))))
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
        _remove_orphans(base)
        prefix = f"cluster-{socket.gethostname()}-{os.getpid()}-"
        self.directory = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
        self._finalizer = weakref.finalize(
            self, shutil.rmtree, str(self.directory), ignore_errors=True
        )
        pems = Security.temporary()
        ca, cert, key = (self.directory / n for n in ("ca.pem", "cert.pem", "key.pem"))
        _write_private(ca, pems.tls_ca_file)
        _write_private(cert, pems.tls_worker_cert)
        _write_private(key, pems.tls_worker_key)
        self.security = Security(
            require_encryption=True,
            tls_ca_file=str(ca),
            tls_client_cert=str(cert),
            tls_client_key=str(key),
            tls_scheduler_cert=str(cert),
            tls_scheduler_key=str(key),
            tls_worker_cert=str(cert),
            tls_worker_key=str(key),
        )

    def cleanup(self) -> None:
        """Remove the directory and its files (idempotent)."""
        self._finalizer()
