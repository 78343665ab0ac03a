"""The umbrella chart k8s/hepml-hub: values against the real chart schemas, its manifests.

Each section of values.yaml is merged over that chart's defaults the way helm does (maps
merge, lists and scalars replace, null deletes) and validated with the chart's own JSON
schema from ../shared/schemas (Z2JH at 48ea50e, dask-gateway at 99f3ef0).
"""

from __future__ import annotations

import ast
import copy
import os
import re
from collections.abc import Callable
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from traitlets.config import Config

from analysis_lib.compute.gateway import declared_options

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "k8s" / "hepml-hub"
SCHEMAS = Path(os.environ.get("HEPML_CHART_SCHEMAS", ROOT.parent / "shared" / "schemas"))
K8S_VERSION = "1.30.0"

pytestmark = pytest.mark.skipif(
    not (SCHEMAS / "z2jh-values.schema.yaml").exists(),
    reason=f"chart schemas not found in {SCHEMAS} (set HEPML_CHART_SCHEMAS)",
)


def helm_merge(defaults: dict, overlay: dict) -> dict:
    """Merge ``overlay`` into ``defaults`` like helm merges values files."""
    merged = copy.deepcopy(defaults)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)  # helm: a null value removes the key
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def values() -> dict:
    return load_yaml(CHART / "values.yaml")


def schema_errors(section: dict, chart: str) -> list[str]:
    defaults = load_yaml(SCHEMAS / f"{chart}-values.yaml")
    schema = load_yaml(SCHEMAS / f"{chart}-values.schema.yaml")
    validator = jsonschema.Draft7Validator(schema)
    merged = helm_merge(defaults, section)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path)}: {e.message[:200]}"
        for e in validator.iter_errors(merged)
    ]


def test_helm_merge_semantics():
    defaults = {"a": {"b": 1, "c": [1, 2], "d": "x"}, "e": 2}
    merged = helm_merge(defaults, {"a": {"c": [3], "d": None}, "f": {"g": 1}})
    assert merged == {"a": {"b": 1, "c": [3]}, "e": 2, "f": {"g": 1}}
    assert defaults["a"]["c"] == [1, 2]  # inputs untouched


def test_chart_depends_on_z2jh_and_dask_gateway():
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    deps = {d["name"]: d for d in chart["dependencies"]}
    assert deps["jupyterhub"]["repository"].rstrip("/") == "https://hub.jupyter.org/helm-chart"
    assert deps["dask-gateway"]["repository"].rstrip("/") == "https://helm.dask.org"
    for dep in deps.values():
        assert re.fullmatch(r"\d+\.\d+\.\d+", dep["version"]), dep


def test_dask_gateway_chart_matches_the_locked_client():
    """The gateway server and the dask-gateway client in the images must be one release."""
    lock = (ROOT / "uv.lock").read_text()
    locked = re.search(r'name = "dask-gateway"\nversion = "([^"]+)"', lock).group(1)
    deps = {d["name"]: d for d in load_yaml(CHART / "Chart.yaml")["dependencies"]}
    assert deps["dask-gateway"]["version"] == locked


def test_jupyterhub_section_validates_against_z2jh_schema(values):
    assert schema_errors(values["jupyterhub"], "z2jh") == []


def test_dask_gateway_section_validates_against_its_schema(values):
    assert schema_errors(values["dask-gateway"], "dask-gateway") == []


@pytest.mark.parametrize(
    ("chart", "section", "path", "bad"),
    [
        ("z2jh", "jupyterhub", ("singleuser", "storage", "capacityy"), "10Gi"),
        ("z2jh", "jupyterhub", ("cull", "timeout"), "an hour"),
        ("dask-gateway", "dask-gateway", ("gateway", "auth", "type"), 42),
    ],
)
def test_schema_check_catches_mistakes(values, chart, section, path, bad):
    broken = copy.deepcopy(values[section])
    node = broken
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = bad
    errors = schema_errors(broken, chart)
    assert errors and any(path[-2] in e or path[-1] in e for e in errors), errors


def test_features_are_switched_on(values):
    hub = values["jupyterhub"]
    assert hub["cull"]["enabled"] and hub["cull"]["timeout"] > 0
    assert hub["hub"]["networkPolicy"]["enabled"]
    assert hub["singleuser"]["networkPolicy"]["enabled"]
    assert hub["singleuser"]["storage"]["type"] == "dynamic"
    assert hub["singleuser"]["profileList"] == []
    config = hub["hub"]["config"]
    assert config["JupyterHub"]["spawner_class"] == "hepml_hub.kubespawner.HepmlKubeSpawner"
    assert config["HepmlKubeSpawner"]["gpu_resource"] == "nvidia.com/gpu"
    gateway = values["dask-gateway"]["gateway"]
    assert gateway["auth"]["type"] == "jupyterhub"
    assert gateway["auth"]["jupyterhub"]["apiTokenFromSecretKey"] == (
        "hub.services.dask-gateway.apiToken"
    )
    assert "dask-gateway" in hub["hub"]["services"]
    assert gateway["prefix"] == "/services/dask-gateway"


def test_images_are_named_consistently(values):
    images = values["images"]
    hub = values["jupyterhub"]
    single = hub["singleuser"]["image"]
    assert f"{single['name']}:{single['tag']}" == images["cpu"]
    backend = values["dask-gateway"]["gateway"]["backend"]["image"]
    assert f"{backend['name']}:{backend['tag']}" == images["cpu"]
    stacks = {s["name"]: s for s in hub["hub"]["config"]["HepmlKubeSpawner"]["stacks"]}
    assert stacks["cpu"]["image"] == images["cpu"] and not stacks["cpu"].get("gpu")
    assert stacks["gpu"]["image"] == images["gpu"] and stacks["gpu"]["gpu"]
    env = {e["name"]: e["value"] for e in values["dask-gateway"]["gateway"]["env"]}
    assert env == {"HEPML_WORKER_IMAGE_CPU": images["cpu"], "HEPML_WORKER_IMAGE_GPU": images["gpu"]}
    assert hub["hub"]["image"]["name"] == images["hub"]


def test_hub_extra_config_registers_the_gateway(values, monkeypatch):
    """Run hub.extraConfig as the Z2JH hub does, after hub.services became a list."""
    monkeypatch.setenv("POD_NAMESPACE", "hepml")
    monkeypatch.setenv("HELM_RELEASE_NAME", "prod")
    c = Config()
    c.JupyterHub.services = [{"name": "dask-gateway", "api_token": "x" * 32, "display": False}]
    for name, snippet in sorted(values["jupyterhub"]["hub"]["extraConfig"].items()):
        exec(compile(snippet, f"hub.extraConfig.{name}", "exec"), {"c": c})
    gateway = "traefik-prod-dask-gateway.hepml"
    assert c.JupyterHub.services[0]["url"] == f"http://{gateway}"
    env = c.KubeSpawner.environment
    assert env["DASK_GATEWAY__ADDRESS"] == f"http://{gateway}/services/dask-gateway"
    assert env["DASK_GATEWAY__PROXY_ADDRESS"] == f"gateway://{gateway}:80"
    assert env["DASK_GATEWAY__AUTH__TYPE"] == "jupyterhub"
    pages = Path(c.JupyterHub.template_paths[0])
    assert (pages / "spawn.html").is_file()


def test_gateway_extra_config_defines_options_and_caps(values):
    """dask-gateway-server is not in the lock: check the snippet's syntax and what it sets."""
    snippets = values["dask-gateway"]["gateway"]["extraConfig"]
    assigned: dict[str, ast.expr] = {}
    options: list[str] = []
    for name, snippet in snippets.items():
        tree = ast.parse(snippet, f"gateway.extraConfig.{name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
                assigned[ast.unparse(node.targets[0])] = node.value
            if (
                isinstance(node, ast.Call)
                and ast.unparse(node.func) in ("Integer", "Float", "String", "Mapping")
                and isinstance(node.args[0], ast.Constant)
            ):
                options.append(node.args[0].value)
    # exactly what the session side (analysis_lib.compute.gateway) sends
    assert options == list(declared_options())
    for key in (
        "c.Backend.cluster_options",
        "c.ClusterConfig.cluster_max_workers",
        "c.ClusterConfig.cluster_max_cores",
        "c.ClusterConfig.cluster_max_memory",
        "c.UserLimits.max_clusters",
        "c.UserLimits.max_cores",
        "c.UserLimits.max_memory",
    ):
        assert key in assigned, key
    assert ast.literal_eval(assigned["c.ClusterConfig.cluster_max_workers"]) > 0
    handler = {
        kw.arg: ast.unparse(kw.value) for kw in assigned["c.Backend.cluster_options"].keywords
    }
    assert handler == {"handler": "hepml_worker_settings"}


class GatewayUser:
    """What the handler reads of dask-gateway-server's User: the name and the groups."""

    def __init__(self, name: str, groups: list[str]):
        self.name, self.groups = name, groups


def gateway_handler(values: dict, monkeypatch) -> Callable:
    """The options handler of the gateway snippet, without dask-gateway-server's imports."""
    images = values["images"]
    monkeypatch.setenv("HEPML_WORKER_IMAGE_CPU", images["cpu"])
    monkeypatch.setenv("HEPML_WORKER_IMAGE_GPU", images["gpu"])
    (snippet,) = values["dask-gateway"]["gateway"]["extraConfig"].values()
    tree = ast.parse(snippet)
    kept = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.Import)
        or (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name))
    ]
    namespace: dict = {}
    exec(compile(ast.Module(body=kept, type_ignores=[]), "gateway", "exec"), namespace)
    return namespace["hepml_worker_settings"]


def test_gateway_handler_turns_options_into_worker_pods(values, monkeypatch):
    handler = gateway_handler(values, monkeypatch)
    images = values["images"]
    asked = {"worker_cores": 2, "worker_memory": 8.0, "image": images["cpu"]}
    cpu = handler(declared_options({**asked, "environment": {"A": "1"}}), GatewayUser("u", []))
    assert cpu["image"] == images["cpu"] and cpu["environment"] == {"A": "1"}
    assert (cpu["worker_cores"], cpu["worker_memory"]) == (2, "8.0G")
    assert "worker_extra_container_config" not in cpu

    gpu = handler(declared_options({**asked, "worker_gpus": 1}), GatewayUser("g", ["gpu"]))
    assert gpu["image"] == images["gpu"]
    assert gpu["worker_extra_container_config"]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    pod = gpu["worker_extra_pod_config"]
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert (
        pod["nodeSelector"]
        == values["jupyterhub"]["hub"]["config"]["HepmlKubeSpawner"]["gpu_node_selector"]
    )
    assert gpu["environment"]["DASK_DISTRIBUTED__WORKER__RESOURCES__GPU"] == "1"

    with pytest.raises(ValueError, match="only members of the 'gpu' group"):
        handler(declared_options({**asked, "worker_gpus": 1}), GatewayUser("u", []))
    with pytest.raises(ValueError, match="image 'evil/miner:1'"):
        handler(declared_options({**asked, "image": "evil/miner:1"}), GatewayUser("u", []))


# -- plain manifests of the chart's own templates ---------------------------------------

_ALLOWED = {
    "{{ .Release.Name }}": "prod",
    "{{ .Release.Namespace }}": "hepml",
}


def render_template(text: str, values: dict) -> str:
    """Render the tiny template subset our templates use; refuse anything else."""
    text = re.sub(r"\{\{-?\s*/\*.*?\*/\s*-?\}\}\n?", "", text, flags=re.S)
    enabled = re.compile(r"\{\{- if \.Values\.([\w.]+) \}\}\n(.*?)\{\{- end \}\}\n?", re.S)

    def switch(match: re.Match) -> str:
        node = values
        for key in match.group(1).split("."):
            node = node[key]
        return match.group(2) if node else ""

    text = enabled.sub(switch, text)
    for expression, value in _ALLOWED.items():
        text = text.replace(expression, value)
    assert "{{" not in text, f"unsupported template expression in: {text[:300]}"
    return text


def chart_manifests(values: dict) -> list[dict]:
    docs = []
    for path in sorted((CHART / "templates").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(render_template(path.read_text(), values)) if d]
    for path in sorted((ROOT / "k8s").glob("manifests/*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def test_manifests_validate_strictly(values):
    docs = chart_manifests(values)
    assert {d["kind"] for d in docs} == {"ClusterRole", "ClusterRoleBinding"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_gpu_inventory_role_reaches_the_hub_service_account(values):
    docs = {d["kind"]: d for d in chart_manifests(values)}
    rules = {(tuple(r["resources"]), tuple(r["verbs"])) for r in docs["ClusterRole"]["rules"]}
    assert (("nodes",), ("get", "list")) in rules and (("pods",), ("list",)) in rules
    subject = docs["ClusterRoleBinding"]["subjects"][0]
    assert subject["name"] == values["jupyterhub"]["hub"]["serviceAccount"]["name"]
    assert subject["namespace"] == "hepml"
    off = helm_merge(values, {"gpuInventory": {"rbac": False}})
    assert chart_manifests(off) == []


def test_a_broken_manifest_is_refused():
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
