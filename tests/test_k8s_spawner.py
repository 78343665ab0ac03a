"""HepmlKubeSpawner: the chart's hub configuration builds real pod manifests, offline.

The spawner is configured from k8s/hepml-hub/values.yaml as the Z2JH hub would configure it
(the singleuser settings that matter here, then ``hub.config``), for a real JupyterHub user
in an in-memory database. ``get_pod_manifest`` needs no cluster: KUBECONFIG points at a
dummy kubeconfig that is never contacted. Only the cluster's node and pod listing, which
needs an API server, is replaced by Node and Pod objects built here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import kubernetes_validate
import kubespawner.clients
import pytest
import yaml
from jupyterhub import orm
from jupyterhub.objects import Hub
from jupyterhub.user import User
from kubernetes.client import (
    ApiClient,
    V1Container,
    V1Node,
    V1NodeSpec,
    V1NodeStatus,
    V1ObjectMeta,
    V1Pod,
    V1PodSpec,
    V1PodStatus,
    V1ResourceRequirements,
)
from kubernetes_asyncio.client import ApiClient as AsyncApiClient
from kubernetes_asyncio.config import kube_config
from traitlets.config import Config

from hepml_hub.kubespawner import HepmlKubeSpawner, count_gpus
from hepml_hub.options import OptionsError
from hepml_hub.spawner import HepmlSpawner

ROOT = Path(__file__).resolve().parents[1]
VALUES = yaml.safe_load((ROOT / "k8s" / "hepml-hub" / "values.yaml").read_text())
HUB_VALUES = VALUES["jupyterhub"]
K8S_VERSION = "1.30.0"
GPU = "nvidia.com/gpu"
_SERIALIZE = ApiClient().sanitize_for_serialization

DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: offline
  cluster: {server: "https://127.0.0.1:9"}
users:
- name: offline
  user: {token: not-a-token}
contexts:
- name: offline
  context: {cluster: offline, user: offline, namespace: hepml}
current-context: offline
"""


def gpu_node(name: str, gpus: int, *, unschedulable: bool = False) -> dict:
    node = V1Node(
        metadata=V1ObjectMeta(name=name),
        spec=V1NodeSpec(unschedulable=unschedulable or None),
        status=V1NodeStatus(allocatable={"cpu": "32", "memory": "256Gi", GPU: str(gpus)}),
    )
    return _SERIALIZE(node)


def gpu_pod(node: str | None, gpus: int, *, phase: str = "Running", init: int = 0) -> dict:
    def container(n: int, name: str) -> V1Container:
        return V1Container(
            name=name, image="x", resources=V1ResourceRequirements(limits={GPU: str(n)})
        )

    pod = V1Pod(
        metadata=V1ObjectMeta(name=f"p-{node}-{gpus}"),
        spec=V1PodSpec(
            node_name=node,
            containers=[container(gpus, "main")],
            init_containers=[container(init, "init")] if init else None,
        ),
        status=V1PodStatus(phase=phase),
    )
    return _SERIALIZE(pod)


class ClusterState:
    """Nodes and pods that the spawners below see instead of an API server's."""

    nodes: list[dict] = []
    pods: list[dict] = []


class OfflineKubeSpawner(HepmlKubeSpawner):
    async def _list_gpus(self) -> tuple[int, int]:
        return count_gpus(ClusterState.nodes, ClusterState.pods, self.gpu_resource)


def z2jh_config(values: dict) -> Config:
    """The parts of Z2JH's jupyterhub_config.py that shape a user pod, then hub.config."""
    c = Config()
    single = values["singleuser"]
    c.KubeSpawner.image = f"{single['image']['name']}:{single['image']['tag']}"
    c.KubeSpawner.cmd = single["cmd"]
    c.KubeSpawner.default_url = single["defaultUrl"]
    c.KubeSpawner.uid = single["uid"]
    c.KubeSpawner.fs_gid = single["fsGid"]
    c.KubeSpawner.namespace = "hepml"
    # the toleration Z2JH gives every user pod (dedicated user nodes)
    c.KubeSpawner.tolerations = [
        {"key": "hub.jupyter.org/dedicated", "operator": "Equal", "value": "user",
         "effect": "NoSchedule"}
    ]  # fmt: skip
    c.KubeSpawner.storage_pvc_ensure = True
    c.KubeSpawner.pvc_name_template = "claim-{user_server}"
    c.KubeSpawner.volumes = [
        {
            "name": "volume-{user_server}",
            "persistentVolumeClaim": {"claimName": "claim-{user_server}"},
        }
    ]
    c.KubeSpawner.volume_mounts = [
        {"name": "volume-{user_server}", "mountPath": single["storage"]["homeMountPath"]}
    ]
    for section, settings in values["hub"]["config"].items():
        c[section].update(settings)
    c.JupyterHub.spawner_class = OfflineKubeSpawner
    return c


@pytest.fixture(scope="module", autouse=True)
def dummy_kubeconfig(tmp_path_factory):
    """KUBECONFIG -> a syntactically valid kubeconfig whose server is never reached."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(DUMMY_KUBECONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(path))
        # kubernetes_asyncio reads KUBECONFIG once, at import; KubeSpawner loads it once
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        kubespawner.clients.load_config.cache_clear()
        yield path
        kubespawner.clients.load_config.cache_clear()


@pytest.fixture(autouse=True)
def offline_cluster():
    ClusterState.nodes = [gpu_node("gpu-a", 2), gpu_node("gpu-b", 1)]
    ClusterState.pods = []
    HepmlKubeSpawner._gpu_cache = None
    yield
    HepmlKubeSpawner._gpu_cache = None


@pytest.fixture
def make_spawner():
    db = orm.new_session_factory("sqlite://")()
    config = z2jh_config(HUB_VALUES)
    settings = {
        "spawner_class": OfflineKubeSpawner,
        "config": config,
        "hub": Hub(),
        "db": db,
        "domain": "",
        "statsd": None,
    }

    def make(name: str, groups=(), spawner_class=OfflineKubeSpawner):
        user = db.query(orm.User).filter_by(name=name).first()
        if user is None:
            user = orm.User(name=name)
            for group in groups:
                found = db.query(orm.Group).filter_by(name=group).first() or orm.Group(name=group)
                user.groups.append(found)
            db.add(user)
            db.commit()
        return User(user, {**settings, "spawner_class": spawner_class}).spawners[""]

    yield make
    db.close()


def run(coro):
    return asyncio.run(coro)


async def manifest(spawner, options: dict) -> dict:
    await spawner._run_apply_user_options(options)
    pod = await spawner.get_pod_manifest()
    async with AsyncApiClient() as api:  # KubeSpawner's models are kubernetes_asyncio's
        return {"apiVersion": "v1", "kind": "Pod", **api.sanitize_for_serialization(pod)}


STACK_IMAGES = {
    s["name"]: s["image"] for s in HUB_VALUES["hub"]["config"]["HepmlKubeSpawner"]["stacks"]
}
PROFILES = [
    # (stack, groups, options, cores, memory GiB, gpus)
    ("cpu", (), {"stack": "cpu", "cores": "2", "memory": "4"}, 2, 4, 0),
    ("cpu", ("gpu",), {"stack": "cpu", "cores": 4, "memory": 16, "backend": "local"}, 4, 16, 0),
    ("gpu", ("gpu",), {"stack": "gpu", "cores": "4", "memory": "16", "gpus": "2"}, 4, 16, 2),
    ("gpu", ("gpu",), {"stack": "gpu"}, 2, 4, 1),  # form defaults; a GPU stack gets 1 GPU
]


@pytest.mark.parametrize(("stack", "groups", "options", "cores", "memory", "gpus"), PROFILES)
def test_each_profile_builds_a_valid_pod(make_spawner, stack, groups, options, cores, memory, gpus):
    async def scenario():
        spawner = make_spawner("alice", groups)
        return spawner, await manifest(spawner, options)

    spawner, pod = run(scenario())
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)

    (container,) = pod["spec"]["containers"]
    assert container["image"] == STACK_IMAGES[stack]
    resources = container["resources"]
    assert resources["limits"]["cpu"] == cores
    assert resources["limits"]["memory"] == memory * 1024**3
    fractions = HUB_VALUES["hub"]["config"]["HepmlKubeSpawner"]
    assert resources["requests"]["cpu"] == cores * fractions["cpu_guarantee_fraction"]
    assert resources["requests"]["memory"] == memory * 1024**3 * fractions["mem_guarantee_fraction"]
    tolerations = pod["spec"].get("tolerations", [])
    keys = {t["key"] for t in tolerations}
    assert "hub.jupyter.org/dedicated" in keys  # the chart's own toleration is kept
    selector = pod["spec"].get("nodeSelector") or {}
    if gpus:
        assert resources["limits"][GPU] == str(gpus)
        assert resources["requests"][GPU] == str(gpus)
        assert GPU in keys
        assert selector == {"hepml.io/node-pool": "gpu"}
    else:
        assert GPU not in resources["limits"] and GPU not in resources.get("requests", {})
        assert GPU not in keys
        assert "hepml.io/node-pool" not in selector

    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HEPML_STACK"] == stack
    assert env["HEPML_CORES"] == env["OMP_NUM_THREADS"] == str(cores)
    assert env["HEPML_GPUS"] == str(gpus)
    assert "CUDA_VISIBLE_DEVICES" not in env  # the device plugin exposes the pod's GPUs
    assert env["HEPML_TUTORIALS_SRC"] == "/opt/hepml/tutorials"
    assert container["args"][:3] == HUB_VALUES["singleuser"]["cmd"]
    assert container["securityContext"]["runAsUser"] == 1000
    assert spawner.user_options["stack"] == stack and spawner.user_options["gpus"] == gpus


def test_sessions_do_not_accumulate_settings(make_spawner):
    async def scenario():
        spawner = make_spawner("bob", ("gpu",))
        await manifest(spawner, {"stack": "gpu", "gpus": 1})
        await manifest(spawner, {"stack": "gpu", "gpus": 1})
        return await manifest(spawner, {"stack": "cpu"})

    pod = run(scenario())
    keys = [t["key"] for t in pod["spec"]["tolerations"]]
    assert keys == ["hub.jupyter.org/dedicated"]
    assert GPU not in pod["spec"]["containers"][0]["resources"]["limits"]


async def refusal(spawner, options: dict) -> OptionsError:
    with pytest.raises(OptionsError) as err:
        await spawner._run_apply_user_options(options)
    return err.value


@pytest.mark.parametrize(
    ("groups", "options", "field"),
    [
        (("gpu",), {"stack": "gpu", "gpus": "3"}, "gpus"),  # over the group's limit of 2
        ((), {"stack": "gpu"}, "stack"),  # the GPU stack is for the gpu group only
        ((), {"stack": "cpu", "gpus": "1"}, "gpus"),
        (("gpu",), {"stack": "cuda"}, "stack"),  # unknown stack
        ((), {"cores": "64"}, "cores"),
        ((), {"memory": "1T"}, "memory"),
        ((), {"image": "evil/miner:latest"}, "image"),  # not an option at all
    ],
)
def test_bad_options_are_refused_as_embedded(make_spawner, groups, options, field):
    form_data = {k: [str(v)] for k, v in options.items()}

    async def scenario():
        spawner = make_spawner("carol", groups)
        rest = await refusal(spawner, options)  # REST API: apply_user_options re-validates
        with pytest.raises(OptionsError) as err:
            spawner.options_from_form(form_data)  # the form, after the GPU count
        return rest, err.value

    rest, form = run(scenario())
    assert rest.field == form.field == field
    # the embedded spawner, with the same form and limits, refuses with the same words
    local = make_spawner("carol", groups, spawner_class=HepmlSpawner)
    spec = HUB_VALUES["hub"]["config"]["HepmlKubeSpawner"]
    local.stacks = [{k: v for k, v in s.items() if k != "image"} for s in spec["stacks"]]
    local.limits, local.backends = spec["limits"], spec["backends"]
    local.form_defaults = spec["form_defaults"]
    with pytest.raises(OptionsError) as err:
        local.options_from_form(form_data)
    assert err.value.field == field

    def text(error: OptionsError) -> str:
        return error.jupyterhub_message or getattr(error, "jupyterhub_html_message", "")

    assert text(form) == text(err.value)


def test_gpus_beyond_the_free_ones_offer_cpu(make_spawner):
    ClusterState.pods = [gpu_pod("gpu-a", 2)]  # gpu-b's single GPU is left

    async def scenario():
        spawner = make_spawner("erin", ("gpu",))
        error = await refusal(spawner, {"stack": "gpu", "gpus": "2"})  # REST API
        with pytest.raises(OptionsError) as form:
            spawner.options_from_form({"stack": ["gpu"], "gpus": ["2"]})
        return error, form.value, await manifest(spawner, {"stack": "gpu", "gpus": "1"})

    error, form, pod = run(scenario())
    assert error.field == "gpus" and error.cpu_fallback and error.may_wait
    assert "only 1 of 3 free" in error.jupyterhub_message
    assert "only 1 of 3 free" in form.jupyterhub_html_message
    assert "Start on CPU instead" in form.jupyterhub_html_message
    assert pod["spec"]["containers"][0]["resources"]["limits"][GPU] == "1"


def test_form_shows_the_users_choices_and_free_gpus(make_spawner):
    ClusterState.pods = [gpu_pod("gpu-b", 1)]

    async def form(name, groups=()):
        return await make_spawner(name, groups).render_options_form()

    html = run(form("frank", ("gpu",)))
    assert 'id="stack-gpu"' in html and 'id="stack-cpu"' in html
    assert "2 of 3 free" in html
    html = run(form("grace"))
    assert 'id="stack-gpu"' not in html and 'id="gpu-not-allowed"' in html
    assert 'value="4"' in html and 'value="5"' not in html.split('name="memory"')[0]


def test_options_from_form_validate_on_the_server(make_spawner):

    async def scenario():
        spawner = make_spawner("heidi", ("gpu",))
        await spawner.render_options_form()  # counts GPUs, as the hub does before a POST
        return spawner.options_from_form(
            {
                "stack": ["gpu"],
                "cores": ["3"],
                "memory": ["8"],
                "gpus": ["1"],
                "backend": ["gateway"],
            }
        )

    options = run(scenario())
    assert options == {"stack": "gpu", "cores": 3, "memory": 8, "gpus": 1, "backend": "gateway"}


def test_without_an_api_server_no_gpu_is_offered(make_spawner):
    """The real listing against the dummy kubeconfig's unreachable server: fail closed."""

    async def scenario():
        spawner = make_spawner("ivan", ("gpu",), spawner_class=HepmlKubeSpawner)
        return await spawner.gpu_availability(fresh=True)

    free_total = run(scenario())
    assert free_total == (0, 0)


def test_profile_list_is_refused(make_spawner):

    async def scenario():
        spawner = make_spawner("judy")
        with pytest.raises(ValueError, match="profile_list"):
            spawner.profile_list = [{"display_name": "x", "kubespawner_override": {}}]

    run(scenario())


def test_count_gpus_from_real_objects():
    nodes = [gpu_node("a", 4), gpu_node("b", 2, unschedulable=True), gpu_node("c", 1)]
    pods = [
        gpu_pod("a", 1),
        gpu_pod("a", 2, phase="Succeeded"),  # finished: holds nothing
        gpu_pod("b", 2),  # on a cordoned node that is not counted
        gpu_pod(None, 1, phase="Pending"),  # not scheduled yet: will take one
        gpu_pod("c", 0, init=1),  # an init container's request counts
    ]
    assert count_gpus(nodes, pods) == (2, 5)
    assert count_gpus(nodes, [*pods, gpu_pod("a", 9)]) == (0, 5)
    with pytest.raises(ValueError, match="whole number"):
        count_gpus([{"metadata": {"name": "x"}, "status": {"allocatable": {GPU: "1.5"}}}], [])
