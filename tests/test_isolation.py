"""Users never reach each other's servers, API records or files."""

from __future__ import annotations

import pytest
import requests

from kernel import execute

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair(hub, users):
    """Two users with running servers and their own tokens."""
    a, _ = users.create("iso-a")
    b, _ = users.create("iso-b")
    for name in (a, b):
        hub.spawn(name, {"cores": 1, "memory": 1})
    yield (a, hub.user_token(a)), (b, hub.user_token(b))
    for name in (a, b):
        hub.stop_server(name)


def get(url: str, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=30, allow_redirects=False)


def test_user_cannot_use_another_users_server(hub, pair):
    (a, token_a), (b, _token_b) = pair
    assert get(f"{hub.url}/user/{a}/api/contents", token_a).status_code == 200
    assert get(f"{hub.url}/user/{b}/api/contents", token_a).status_code == 403
    assert get(f"{hub.url}/user/{b}/api/kernels", token_a).status_code == 403
    r = requests.post(
        f"{hub.url}/user/{b}/api/kernels",
        json={"name": "python3"},
        headers={"Authorization": f"token {token_a}"},
        timeout=30,
    )
    assert r.status_code == 403


def test_user_cannot_read_or_act_on_another_user_in_the_hub_api(hub, pair):
    (a, token_a), (b, _) = pair
    assert hub.request("GET", f"/users/{a}", token=token_a).status_code == 200
    assert hub.request("GET", f"/users/{b}", token=token_a).status_code in (403, 404)
    assert hub.request("DELETE", f"/users/{b}/server", token=token_a).status_code in (403, 404)
    assert hub.request("POST", f"/users/{b}/tokens", token=token_a, json={}).status_code in (
        403,
        404,
    )
    listing = hub.request("GET", "/users", token=token_a)
    assert listing.status_code == 403 or {u["name"] for u in listing.json()} <= {a}


def test_no_token_no_access(hub, pair):
    (a, _), _ = pair
    assert hub.request("GET", "/users", token="").status_code == 403
    assert hub.request("GET", f"/users/{a}", token="").status_code == 403
    assert get(f"{hub.url}/user/{a}/api/contents").status_code in (302, 403)
    assert get(f"{hub.url}/user/{a}/api/contents", "not-a-token").status_code in (302, 403)


@pytest.mark.root
def test_notebook_code_cannot_read_another_home(hub, pair):
    (a, token_a), (b, token_b) = pair
    b_home = hub.data_dir / "homes" / b
    execute(
        f"{hub.url}/user/{b}/",
        token_b,
        "import pathlib; (pathlib.Path.home() / 'secret.txt').write_text('s3cret')",
    )
    assert (b_home / "secret.txt").exists()
    probe = f"""
import os
for action in (lambda: open({str(b_home / "secret.txt")!r}).read(),
               lambda: os.listdir({str(b_home)!r}),
               lambda: open({str(b_home / "planted.txt")!r}, 'w')):
    try:
        action()
        print('ALLOWED')
    except PermissionError:
        print('denied')
"""
    assert execute(f"{hub.url}/user/{a}/", token_a, probe).split() == ["denied"] * 3
    assert not (b_home / "planted.txt").exists()
    # and the hub's own secrets are out of reach too
    leak = f"""
try:
    print(open({str(hub.data_dir / "jupyterhub_cookie_secret")!r}).read())
except PermissionError:
    print('denied')
"""
    assert execute(f"{hub.url}/user/{a}/", token_a, leak).strip() == "denied"
