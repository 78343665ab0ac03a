"""Authentication: accounts with passwords, sign-up with admin approval, a first-run admin.

Built on NativeAuthenticator: people sign up at ``/hub/signup`` and an admin approves them
at ``/hub/authorize``. On the very first start the hub creates the admin account named by
:attr:`HepmlAuthenticator.first_admin` with a random password, writes it to
:attr:`HepmlAuthenticator.admin_password_file` (mode 0600) and prints it once.

User names are restricted so that each can become a system account (``jupyter-<name>``).
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from pathlib import Path

from nativeauthenticator import NativeAuthenticator
from nativeauthenticator import handlers as native_handlers
from traitlets import Unicode, default

#: Hub user names that can become system accounts ``jupyter-<name>``.
USERNAME_PATTERN = r"^[a-z][a-z0-9_-]{0,23}$"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically (temporary name, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class _Timer:
    def start(self) -> _Timer:
        return self

    def stop(self, send: bool = True) -> None:
        pass


class _NoStatsd:
    def timer(self, name: str) -> _Timer:
        return _Timer()


class LoginHandler(native_handlers.LoginHandler):
    """NativeAuthenticator's login page, adapted to JupyterHub 6.

    JupyterHub 6 dropped ``handler.statsd`` and passes extra keywords to ``_render`` when it
    shows an error on the login form; NativeAuthenticator 1.3 expects neither.
    """

    statsd = _NoStatsd()

    def _render(self, login_error=None, username=None, **_ignored):
        return super()._render(login_error=login_error, username=username)


class HepmlAuthenticator(NativeAuthenticator):
    """NativeAuthenticator with system-safe user names and a first-run admin."""

    first_admin = Unicode(
        "admin",
        config=True,
        help="""Admin account created with a random password on the first start ("" for none).

        Example: ``c.HepmlAuthenticator.first_admin = "admin"``
        """,
    )
    admin_password_file = Unicode(
        "admin-password",
        config=True,
        help="""Where the first admin's password is written (mode 0600).

        Example: ``c.HepmlAuthenticator.admin_password_file = "/srv/hepml/admin-password"``
        """,
    )

    @default("username_pattern")
    def _username_pattern_default(self) -> str:
        return USERNAME_PATTERN

    @default("minimum_password_length")
    def _minimum_password_length_default(self) -> int:
        return 10

    @default("check_common_password")
    def _check_common_password_default(self) -> bool:
        return True

    def get_handlers(self, app):
        """NativeAuthenticator's pages, with the login page fixed for JupyterHub 6."""
        return [
            (path, LoginHandler if handler is native_handlers.LoginHandler else handler)
            for path, handler in super().get_handlers(app)
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.username_pattern and self.username_regex is None:
            # a trait default does not fire the observer that compiles the pattern
            self.username_regex = re.compile(self.username_pattern)
        if self.first_admin:
            self.ensure_first_admin()

    def ensure_first_admin(self) -> str | None:
        """Create the first admin if it has no account yet; return the new password."""
        name = self.normalize_username(self.first_admin)
        if self.user_exists(name):
            return None
        self.admin_users = set(self.admin_users) | {name}
        password = secrets.token_urlsafe(15)
        if self.create_user(name, password) is None:
            raise RuntimeError(f"could not create the first admin {name!r}")
        path = Path(self.admin_password_file)
        write_private(path, password + "\n")
        print(
            f"\n  hepml-hub: created admin user {name!r} with password {password}\n"
            f"  (also written to {path.resolve()}, readable by its owner only)\n",
            file=sys.stderr,
            flush=True,
        )
        return password
