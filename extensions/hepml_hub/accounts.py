"""Per-user system accounts and private homes, in the manner of The Littlest JupyterHub.

When the hub runs as root, hub user ``alice`` gets the system account ``jupyter-alice``
(created on first spawn) whose home ``<data_dir>/homes/alice`` is private (mode 0700).
When the hub runs as an ordinary user, every server runs as that user.

Examples
--------
>>> system_username("alice")
'jupyter-alice'
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

PREFIX = "jupyter-"
_VALID = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
_PREFIX = re.compile(r"^[a-z][a-z0-9_-]{0,7}$")
#: The comment (GECOS field) of the accounts this module makes: only those are used.
COMMENT = "hepml-hub user"


def valid_prefix(prefix: str) -> bool:
    """Whether ``prefix`` makes system names that cannot be existing system accounts'.

    Non-empty, so that hub user ``root`` does not become the account ``root``; at most 8
    characters, so that prefix + hub name (24) stays within 32.

    Examples
    --------
    >>> valid_prefix("jupyter-"), valid_prefix(""), valid_prefix("Jupyter")
    (True, False, False)
    """
    return isinstance(prefix, str) and bool(_PREFIX.match(prefix))


def system_username(hub_name: str, prefix: str = PREFIX) -> str:
    """The system account of hub user ``hub_name``.

    Hub names are restricted (see :data:`hepml_hub.auth.USERNAME_PATTERN`) so the result is
    a valid POSIX user name of at most 32 characters.
    """
    if not _VALID.match(hub_name):
        raise ValueError(
            f"hub user name {hub_name!r} cannot become a system account: "
            f"it must match {_VALID.pattern}"
        )
    return prefix + hub_name


def running_as_root() -> bool:
    """Whether this process may create accounts and switch users."""
    return os.geteuid() == 0


def ensure_account(username: str, home: Path) -> pwd.struct_passwd:
    """Create system account ``username`` with private ``home`` if it does not exist.

    Idempotent. The home directory is created mode 0700 and owned by the account.
    """
    try:
        entry = pwd.getpwnam(username)
    except KeyError:
        entry = None
    if entry is not None and (entry.pw_uid == 0 or entry.pw_gecos != COMMENT):
        # an account this hub did not make (root, a service, a person): never take it over
        raise PermissionError(
            f"system account {username!r} exists and was not made by hepml-hub; "
            "refusing to run a server as it"
        )
    if entry is None:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        _run(
            f"create the system account {username!r}",
            [
                useradd,
                "--no-create-home",
                "--home-dir",
                str(home),
                "--shell",
                "/bin/bash",
                "--user-group",
                "--comment",
                COMMENT,
                username,
            ],
        )
        entry = pwd.getpwnam(username)
    if entry.pw_dir != str(home):  # the data directory moved since the account was made
        usermod = shutil.which("usermod") or "/usr/sbin/usermod"
        _run(f"move the home of {username!r}", [usermod, "--home", str(home), username])
        entry = pwd.getpwnam(username)
    ensure_private_dir(home, entry.pw_uid, entry.pw_gid)
    return entry


def _run(what: str, cmd: list[str]) -> None:
    """Run an account command; on failure say what failed and why (its stderr), without
    the command line (a spawn error is shown to the user)."""
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        why = reason[-1] if reason else f"exit status {done.returncode}"
        raise RuntimeError(f"could not {what}: {why}")


def ensure_private_dir(path: Path, uid: int, gid: int) -> None:
    """Make ``path`` exist, owned by ``uid:gid`` with mode 0700."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)
    st = path.stat()
    if (st.st_uid, st.st_gid) != (uid, gid) and running_as_root():
        os.chown(path, uid, gid)
    if st.st_mode & 0o777 != 0o700:
        path.chmod(0o700)
