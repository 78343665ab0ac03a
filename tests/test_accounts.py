"""Per-user system accounts: a root hub never runs a server as root or as an account it
did not make, and a failed account command says why."""

from __future__ import annotations

import pwd

import pytest

from hepml_hub import accounts
from hepml_hub.spawner import HepmlSpawner


@pytest.mark.root
def test_a_root_hub_refuses_to_run_servers_without_isolation():
    # servers then ran as root: a fork server refusal fell back to a plain Popen as root
    with pytest.raises(ValueError, match="would run every user's server as root"):
        HepmlSpawner(isolate_users=False)
    assert HepmlSpawner().isolate_users is True


@pytest.mark.parametrize("prefix", ["", "Jupyter-", "-x", "averylongprefix-", "a b"])
def test_the_account_prefix_cannot_map_hub_users_onto_system_accounts(prefix):
    # with "" the hub user "root" became the account root
    with pytest.raises(ValueError, match=f"system_user_prefix must .* got {prefix!r}"):
        HepmlSpawner(system_user_prefix=prefix)
    assert accounts.valid_prefix("hub_")


@pytest.mark.root
@pytest.mark.parametrize("name", ["root", "daemon"])
def test_accounts_the_hub_did_not_make_are_never_used(name, tmp_path):
    before = pwd.getpwnam(name)
    with pytest.raises(PermissionError, match=f"system account {name!r} exists and was not made"):
        accounts.ensure_account(name, tmp_path / "home")
    assert pwd.getpwnam(name).pw_dir == before.pw_dir  # not moved (usermod --home)
    assert not (tmp_path / "home").exists()


def test_a_failed_account_command_says_why_without_the_command_line():
    with pytest.raises(RuntimeError) as info:
        accounts._run(
            "create the system account 'jupyter-x'",
            ["sh", "-c", "echo 'useradd: cannot lock /etc/passwd; try again later.' >&2; exit 1"],
        )
    message = str(info.value)
    assert message == (
        "could not create the system account 'jupyter-x': "
        "useradd: cannot lock /etc/passwd; try again later."
    )
    with pytest.raises(RuntimeError, match="could not move the home of 'x': exit status 3"):
        accounts._run("move the home of 'x'", ["sh", "-c", "exit 3"])
