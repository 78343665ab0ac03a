"""Malformed spawn options, through the form and through the REST API, are refused.

Each is answered with status 400 and a message naming the offending field, and no server
process is started (when the hub runs as root, the user's system account is not even
created, because validation comes first).
"""

from __future__ import annotations

import html
import os
import pwd

import psutil
import pytest

pytestmark = pytest.mark.slow

# (options, field named in the error). Form values are strings, as a browser sends them.
FORM_CASES = [
    ({"cores": "-1"}, "cores"),
    ({"cores": "0"}, "cores"),
    ({"cores": "100000"}, "cores"),
    ({"cores": "two"}, "cores"),
    ({"cores": "1.5"}, "cores"),
    ({"cores": ""}, "cores"),
    ({"memory": "-8"}, "memory"),
    ({"memory": "99999"}, "memory"),
    ({"memory": "lots"}, "memory"),
    ({"memory": "4TB"}, "memory"),
    ({"stack": "root6"}, "stack"),
    ({"stack": "cpu'; DROP TABLE users; --"}, "stack"),
    ({"stack": "<script>alert(1)</script>"}, "stack"),
    ({"stack": "gpu"}, "stack"),
    ({"gpus": "1"}, "gpus"),
    ({"gpus": "-1"}, "gpus"),
    ({"backend": "yarn"}, "backend"),
    ({"backend": "$(reboot)"}, "backend"),
    ({"image": "evil/image:latest"}, "image"),
    ({"cores": ["1", "2"]}, "cores"),
]
# REST bodies carry JSON types too.
REST_CASES = [
    *FORM_CASES,
    ({"cores": -3}, "cores"),
    ({"cores": 1e6}, "cores"),
    ({"cores": True}, "cores"),
    ({"cores": None}, "cores"),
    ({"cores": {"$gt": 0}}, "cores"),
    ({"memory": [4]}, "memory"),
    ({"memory": 2.5}, "memory"),
    ({"gpus": 1, "stack": "cpu"}, "gpus"),
    ({"backend": ["local"] * 3}, "backend"),
    ({"__class__": "x"}, "__class__"),
]


@pytest.fixture(scope="module")
def victim(hub, users):
    """A user (not in the gpu group) whose requests are all refused."""
    name, password = users.create("badinput")
    return name, hub.login(name, password), hub.user_token(name)


def assert_nothing_started(hub, name):
    assert hub.server_model(name) is None
    if os.geteuid() == 0:
        with pytest.raises(KeyError):
            pwd.getpwnam(f"jupyter-{name}")
    procs = [
        p
        for p in psutil.process_iter(["environ"])
        if (p.info["environ"] or {}).get("JUPYTERHUB_USER") == name
    ]
    assert procs == []


@pytest.mark.parametrize(("options", "field"), FORM_CASES, ids=[repr(c[0]) for c in FORM_CASES])
def test_form_refuses(hub, victim, options, field):
    name, session, _ = victim
    page = session.get(f"{hub.url}/hub/spawn", timeout=30)
    from hubprocess import xsrf_token

    r = session.post(
        f"{hub.url}/hub/spawn", data={**options, "_xsrf": xsrf_token(page.text)}, timeout=30
    )
    assert r.status_code == 400, r.text[:300]
    text = html.unescape(r.text)
    assert "spawn-error-msg" in r.text and f"{field}:" in text
    assert "<script>alert(1)</script>" not in r.text  # echoed input is escaped
    assert_nothing_started(hub, name)


@pytest.mark.parametrize(("options", "field"), REST_CASES, ids=[repr(c[0]) for c in REST_CASES])
def test_rest_refuses(hub, victim, options, field):
    name, _, token = victim
    r = hub.request("POST", f"/users/{name}/server", token=token, json={"user_options": options})
    assert r.status_code == 400, r.text
    assert r.json()["message"].startswith(f"{field}:"), r.json()
    assert_nothing_started(hub, name)


def test_gpu_request_without_free_gpu_offers_cpu(hub, users):
    """A member of the gpu group asks for a GPU; none is free here."""
    name, password = users.create("gpu-asker", groups=["gpu"])
    session = hub.login(name, password)
    form = session.get(f"{hub.url}/hub/spawn", timeout=30)
    assert "0 of 0 free" in form.text and 'id="stack-gpu"' in form.text
    from hubprocess import xsrf_token

    r = session.post(
        f"{hub.url}/hub/spawn",
        timeout=30,
        data={
            "stack": "gpu",
            "gpus": "1",
            "cores": "1",
            "memory": "2",
            "_xsrf": xsrf_token(form.text),
        },
    )
    assert r.status_code == 400
    assert "gpus: 1 requested but only 0 of 0 free now" in html.unescape(r.text)
    assert 'id="hepml-cpu-fallback"' in r.text
    assert_nothing_started(hub, name)

    r = hub.request(
        "POST", f"/users/{name}/server", json={"user_options": {"stack": "gpu", "gpus": 1}}
    )
    assert r.status_code == 400 and r.json()["message"].startswith("gpus:")
    assert_nothing_started(hub, name)


def test_enough_cases():
    """The issue asks for at least 30 malformed option sets over both channels."""
    assert len(FORM_CASES) + len(REST_CASES) >= 30
