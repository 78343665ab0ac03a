"""GPU-aware culling: the policy on recorded NVML readings, and the service against a real hub.

No GPU on these machines: readings are replayed through ``RecordedUtilisation``; the
integration test lets the culler believe a real (CPU) server holds GPU 0, so its warning
and its stop go through the real hub, proxy and server extension.
"""

from __future__ import annotations

import dataclasses
import time

import pytest
import requests
from traitlets.config import Config

from hepml_hub import embedded
from hepml_hub.gpu_culler import GpuServer, HubApi, cull_round, warning_text
from hepml_hub.gpu_culling import (
    Action,
    GpuCullPolicy,
    GpuCullTracker,
    GpuUtilisationSource,
    NvmlUtilisation,
    RecordedUtilisation,
)
from hepml_hub.settings import HepmlHub

EVERY = 60  # seconds between readings in the recorded runs
#: nvidia-smi style readings of a training job (percent): busy, with short input-pipeline dips.
TRAINING = [97, 95, 99, 3, 96, 98, 91, 0, 94, 97, 99, 98, 2, 93, 96, 97, 95, 99, 98, 97]
#: A notebook that ran a quick test on the GPU and was then left open.
ABANDONED = [88, 72, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]


def run(tracker, server, gpus, source, steps):
    """Observe ``server`` every EVERY seconds; the actions, in order."""
    return [tracker.observe(server, gpus, source, now=i * EVERY).action for i in range(steps)]


def test_idle_gpu_session_is_warned_then_stopped():
    policy = GpuCullPolicy(idle_timeout=600, warn_before=180)
    tracker = GpuCullTracker(policy)
    actions = run(tracker, "alice/", [0], RecordedUtilisation({0: ABANDONED}), 20)
    first_idle = ABANDONED.index(0)  # step 2, t=120 s
    warn_step = actions.index(Action.WARN)
    stop_step = actions.index(Action.STOP)
    # Warned once the GPU was idle for idle_timeout - warn_before, stopped at idle_timeout.
    assert (warn_step - first_idle) * EVERY == policy.idle_timeout - policy.warn_before
    assert (stop_step - first_idle) * EVERY == policy.idle_timeout
    assert actions[:first_idle] == [Action.BUSY] * first_idle
    assert set(actions[first_idle:warn_step]) == {Action.KEEP}
    assert set(actions[warn_step + 1 : stop_step]) == {Action.KEEP}
    assert actions.count(Action.WARN) == 1


def test_busy_training_is_never_culled():
    tracker = GpuCullTracker(GpuCullPolicy(idle_timeout=120, warn_before=60))
    actions = run(tracker, "bob/", [0, 1], RecordedUtilisation({0: TRAINING, 1: TRAINING}), 200)
    assert Action.WARN not in actions and Action.STOP not in actions
    assert actions.count(Action.BUSY) > len(actions) / 2


def test_one_busy_gpu_of_several_keeps_the_session():
    tracker = GpuCullTracker(GpuCullPolicy(idle_timeout=120, warn_before=60))
    source = RecordedUtilisation({0: [0.0], 1: [0.0], 2: [40.0]})
    assert set(run(tracker, "carol/", [0, 1, 2], source, 30)) == {Action.BUSY}


def test_a_warned_session_that_resumes_is_kept_and_its_clock_restarts():
    policy = GpuCullPolicy(idle_timeout=300, warn_before=120)
    tracker = GpuCullTracker(policy)
    readings = [0] * 4 + [80] + [0] * 10  # warned at t=180, GPU used at t=240
    actions = run(tracker, "dan/", [3], RecordedUtilisation({3: readings}), 15)
    assert actions[3] is Action.WARN and actions[4] is Action.BUSY
    # Idle again from t=300: a new warning at t=480 and the stop at t=600, not earlier.
    assert actions.index(Action.WARN, 5) == 8
    assert actions.index(Action.STOP) == 10


def test_the_warning_period_is_honoured_when_readings_come_late():
    tracker = GpuCullTracker(GpuCullPolicy(idle_timeout=600, warn_before=300))
    source = RecordedUtilisation({0: [0.0]})
    tracker.observe("erin/", [0], source, now=0)
    decision = tracker.observe("erin/", [0], source, now=1000)  # hub was busy: first look
    assert decision.action is Action.WARN and decision.stop_in == 300
    assert tracker.observe("erin/", [0], source, now=1200).action is Action.KEEP
    assert tracker.observe("erin/", [0], source, now=1300).action is Action.STOP


def test_unreadable_gpus_count_as_busy():
    tracker = GpuCullTracker(GpuCullPolicy(idle_timeout=60, warn_before=0))
    source = RecordedUtilisation({0: [None]})
    assert set(run(tracker, "frank/", [0], source, 10)) == {Action.BUSY}
    assert set(run(tracker, "frank/", [7], source, 3)) == {Action.BUSY}  # no such GPU


def test_sessions_without_gpus_are_left_to_the_idle_culler(tmp_path):
    tracker = GpuCullTracker(GpuCullPolicy(idle_timeout=60, warn_before=30))
    assert set(run(tracker, "gina/", [], RecordedUtilisation({0: [0.0]}), 10)) == {Action.KEEP}

    c = Config()
    settings = HepmlHub(
        cull_timeout=3600, gpu_cull_timeout=900, gpu_cull_warning=300, data_dir=str(tmp_path)
    )
    embedded.configure(c, settings)
    services = {s["name"]: s["command"] for s in c.JupyterHub.services}
    assert "--timeout=3600" in services["idle-culler"]
    assert {"--timeout=900", "--warn=300"} <= set(services["gpu-culler"])
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert "admin:server_state" in roles["gpu-culler"]["scopes"]


def test_gpu_culling_can_be_turned_off_and_bad_settings_are_named(tmp_path):
    c = Config()
    embedded.configure(c, HepmlHub(gpu_cull_timeout=0, data_dir=str(tmp_path)))
    assert "gpu-culler" not in {s["name"] for s in c.JupyterHub.services}
    with pytest.raises(ValueError, match="gpu_cull_warning"):
        embedded.configure(
            Config(),
            HepmlHub(gpu_cull_timeout=60, gpu_cull_warning=120, data_dir=str(tmp_path)),
        )
    with pytest.raises(ValueError, match="warn_before"):
        GpuCullPolicy(idle_timeout=60, warn_before=61)
    with pytest.raises(ValueError, match="busy_percent"):
        GpuCullPolicy(idle_timeout=60, warn_before=0, busy_percent=0)


def test_sources_follow_the_protocol():
    assert isinstance(NvmlUtilisation(), GpuUtilisationSource)
    assert isinstance(RecordedUtilisation({0: [1.0]}), GpuUtilisationSource)
    with pytest.raises(ValueError, match="GPU 2 has no readings"):
        RecordedUtilisation({2: []})


class PretendGpus(HubApi):
    """The real hub API, except that ``user``'s server is said to hold GPU 0."""

    def __init__(self, *args, user: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def servers(self) -> list[GpuServer]:
        return [
            dataclasses.replace(s, gpu_ids=(0,)) for s in super().servers() if s.user == self.user
        ]


@pytest.mark.slow
def test_culler_warns_in_the_session_then_stops_it_through_the_real_hub(hub, users):
    name, _ = users.create("gpu-cull-idle")
    r = hub.spawn(name, {"stack": "cpu", "cores": 1, "memory": 1, "backend": "local"})
    assert r.status_code in (201, 202), r.text
    try:
        # The hub runs the service with its own token; its first round is logged.
        deadline = time.monotonic() + 30
        while "checked 0 GPU server(s)" not in hub.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "gpu-culler] checked 0 GPU server(s)" in hub.log_text(), hub.log_tail()

        api = PretendGpus(hub.api, hub.url, hub.token, user=name)
        [server] = api.servers()
        assert server.url == f"/user/{name}/"
        tracker = GpuCullTracker(GpuCullPolicy(idle_timeout=600, warn_before=300))

        # Busy GPUs are activity: the hub's last_activity moves (idle-culler spares it).
        before = hub.server_model(name)["last_activity"]
        time.sleep(1.1)
        busy = cull_round(api, tracker, RecordedUtilisation({0: [85.0]}))
        assert busy[server.key].action is Action.BUSY
        assert hub.server_model(name)["last_activity"] > before
        assert f"200 POST /hub/api/users/{name}/activity (test-admin@" in hub.log_text()

        idle = RecordedUtilisation({0: [0.0]})
        assert cull_round(api, tracker, idle, now=0)[server.key].action is Action.KEEP
        warned = cull_round(api, tracker, idle, now=300)[server.key]
        assert warned.action is Action.WARN

        # The session shows the warning to its user (JupyterLab polls this endpoint).
        notices = requests.get(
            f"{hub.url}/user/{name}/hepml/notices",
            headers={"Authorization": f"token {hub.user_token(name)}"},
            timeout=30,
        )
        assert notices.status_code == 200, notices.text
        assert [n["message"] for n in notices.json()] == [warning_text(warned)]
        assert hub.server_model(name) is not None

        assert cull_round(api, tracker, idle, now=600)[server.key].action is Action.STOP
        deadline = time.monotonic() + 30
        while hub.server_model(name) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert hub.server_model(name) is None, "the culler's stop did not stop the server"
    finally:
        hub.stop_server(name)
