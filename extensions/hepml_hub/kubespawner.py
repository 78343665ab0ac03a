"""The Kubernetes deployment's spawner: KubeSpawner driven by the hepml-hub spawn form.

:class:`HepmlKubeSpawner` puts the same form, per-group limits and validation as the
embedded :class:`~hepml_hub.spawner.HepmlSpawner` (:mod:`hepml_hub.options`) on top of
KubeSpawner. A validated :class:`~hepml_hub.options.SessionOptions` becomes a pod:

- ``stack`` -> the stack's container image (CPU or GPU single-user image);
- ``cores`` -> ``cpu_limit`` (and ``cpu_guarantee``, a fraction of it);
- ``memory`` -> ``mem_limit`` (and ``mem_guarantee``);
- ``gpus`` -> ``extra_resource_limits = {"nvidia.com/gpu": n}`` plus the GPU node pool's
  tolerations and node selector; CPU pods get none of these.

GPU availability on the form ("N of M free") and the refusal of a request for more GPUs
than are free come from the cluster: allocatable ``nvidia.com/gpu`` of the schedulable
nodes minus what live pods request (:func:`count_gpus`). The Kubernetes device plugin,
not the hub, hands out the devices, so no ``CUDA_VISIBLE_DEVICES`` is set in pods.

The pure parts (:func:`count_gpus`, :func:`pod_settings`) are tested alone; the spawner
builds real pod manifests offline (``get_pod_manifest`` needs no cluster).

Examples
--------
>>> from hepml_hub.options import SessionOptions, Stack
>>> gpu = Stack("gpu", "GPU", gpu=True, image="registry.example/hepml-gpu:1")
>>> s = pod_settings(SessionOptions("gpu", 4, 16, 1, "gateway"), gpu,
...                  gpu_tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists",
...                                    "effect": "NoSchedule"}])
>>> s["image"], s["cpu_limit"], s["mem_limit"], s["extra_resource_limits"]
('registry.example/hepml-gpu:1', 4.0, 17179869184, {'nvidia.com/gpu': '1'})
>>> count_gpus(
...     nodes=[{"metadata": {"name": "n1"}, "spec": {},
...             "status": {"allocatable": {"nvidia.com/gpu": "2"}}}],
...     pods=[{"spec": {"nodeName": "n1", "containers": [
...               {"resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
...            "status": {"phase": "Running"}}])
(1, 2)
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping
from typing import Any as AnyType

from kubespawner import KubeSpawner
from traitlets import Any, Dict, Float, List, Unicode, default, validate

from hepml_hub.options import OptionsError, SessionOptions, Stack, validate_options
from hepml_hub.spawner import HepmlSpawner

#: The extended resource that the NVIDIA device plugin advertises.
GPU_RESOURCE = "nvidia.com/gpu"

#: KubeSpawner traits that :func:`pod_settings` sets from a session.
POD_TRAITS = (
    "image",
    "cpu_limit",
    "cpu_guarantee",
    "mem_limit",
    "mem_guarantee",
    "extra_resource_limits",
    "extra_resource_guarantees",
    "tolerations",
    "node_selector",
)

_FINISHED = ("Succeeded", "Failed")


def _quantity(value: object) -> int:
    """A whole-number quantity of an extended resource (``"2"`` -> 2)."""
    try:
        return int(str(value))
    except ValueError:
        raise ValueError(f"GPU quantity must be a whole number, got {value!r}") from None


def _pod_request(pod: Mapping[str, AnyType], resource: str) -> int:
    """What one pod asks of ``resource``: max(sum of containers, largest init container)."""
    spec = pod.get("spec") or {}

    def asked(container: Mapping[str, AnyType]) -> int:
        resources = container.get("resources") or {}
        for key in ("limits", "requests"):  # extended resources: requests == limits
            value = (resources.get(key) or {}).get(resource)
            if value is not None:
                return _quantity(value)
        return 0

    running = sum(asked(c) for c in spec.get("containers") or [])
    init = max((asked(c) for c in spec.get("initContainers") or []), default=0)
    return max(running, init)


def count_gpus(
    nodes: Iterable[Mapping[str, AnyType]],
    pods: Iterable[Mapping[str, AnyType]],
    resource: str = GPU_RESOURCE,
) -> tuple[int, int]:
    """Free and total GPUs of a cluster, from its Node and Pod objects.

    Parameters
    ----------
    nodes, pods : iterable of mapping
        Objects as the Kubernetes API serialises them (camelCase keys).
    resource : str
        The extended resource to count.

    Returns
    -------
    (free, total) : tuple of int
        ``total`` sums ``status.allocatable[resource]`` over schedulable nodes; ``free``
        subtracts what unfinished pods on those nodes, or not yet scheduled, ask for.

    Examples
    --------
    >>> count_gpus([{"metadata": {"name": "a"}, "spec": {"unschedulable": True},
    ...              "status": {"allocatable": {"nvidia.com/gpu": "4"}}}], [])
    (0, 0)
    """
    counted: set[str] = set()
    total = 0
    for node in nodes:
        if (node.get("spec") or {}).get("unschedulable"):
            continue
        allocatable = ((node.get("status") or {}).get("allocatable") or {}).get(resource)
        if allocatable is None:
            continue
        counted.add((node.get("metadata") or {}).get("name", ""))
        total += _quantity(allocatable)
    used = 0
    for pod in pods:
        if (pod.get("status") or {}).get("phase") in _FINISHED:
            continue
        node_name = (pod.get("spec") or {}).get("nodeName")
        if node_name and node_name not in counted:
            continue
        used += _pod_request(pod, resource)
    return max(0, total - used), total


def pod_settings(
    session: SessionOptions,
    stack: Stack,
    *,
    base: Mapping[str, AnyType] | None = None,
    gpu_resource: str = GPU_RESOURCE,
    gpu_tolerations: Iterable[Mapping[str, AnyType]] = (),
    gpu_node_selector: Mapping[str, str] | None = None,
    cpu_guarantee_fraction: float = 1.0,
    mem_guarantee_fraction: float = 1.0,
) -> dict[str, AnyType]:
    """KubeSpawner trait values for one validated session (a pure builder).

    Parameters
    ----------
    session : SessionOptions
        Validated choices (:func:`hepml_hub.options.validate_options`).
    stack : Stack
        The chosen stack; its ``image`` replaces ``base["image"]`` when set.
    base : mapping, optional
        The configured values of :data:`POD_TRAITS` (tolerations, node selector, ...),
        which the session's values extend.
    gpu_resource : str
        Extended resource name of a GPU.
    gpu_tolerations, gpu_node_selector
        Added to GPU pods only, so they land on (tainted) GPU nodes.
    cpu_guarantee_fraction, mem_guarantee_fraction : float
        Guarantee (request) as a fraction of the limit, in (0, 1].

    Returns
    -------
    dict
        One value for each name in :data:`POD_TRAITS`; memory in bytes, GPUs as strings.

    Examples
    --------
    >>> cpu = Stack("cpu", "CPU", image="registry.example/hepml-cpu:1")
    >>> s = pod_settings(SessionOptions("cpu", 2, 4, 0, "local"), cpu,
    ...                  cpu_guarantee_fraction=0.5)
    >>> s["cpu_guarantee"], s["mem_guarantee"], s["extra_resource_limits"], s["tolerations"]
    (1.0, 4294967296, {}, [])
    """
    for name, fraction in (("cpu", cpu_guarantee_fraction), ("memory", mem_guarantee_fraction)):
        if not 0 < fraction <= 1:
            raise ValueError(f"{name} guarantee fraction must be in (0, 1], got {fraction!r}")
    if session.gpus and not stack.gpu:
        raise ValueError(f"stack {stack.name!r} is CPU only but {session.gpus} GPU(s) asked")
    base = dict(base or {})
    memory = session.memory * 1024**3
    limits = {k: v for k, v in (base.get("extra_resource_limits") or {}).items()}
    guarantees = {k: v for k, v in (base.get("extra_resource_guarantees") or {}).items()}
    tolerations = [dict(t) for t in base.get("tolerations") or []]
    node_selector = dict(base.get("node_selector") or {})
    limits.pop(gpu_resource, None)
    guarantees.pop(gpu_resource, None)
    if session.gpus:
        limits[gpu_resource] = guarantees[gpu_resource] = str(session.gpus)
        tolerations += [dict(t) for t in gpu_tolerations if dict(t) not in tolerations]
        node_selector.update(gpu_node_selector or {})
    return {
        "image": stack.image or base.get("image", ""),
        "cpu_limit": float(session.cores),
        "cpu_guarantee": float(session.cores) * cpu_guarantee_fraction,
        "mem_limit": memory,
        "mem_guarantee": int(memory * mem_guarantee_fraction),
        "extra_resource_limits": limits,
        "extra_resource_guarantees": guarantees,
        "tolerations": tolerations,
        "node_selector": node_selector,
    }


class HepmlKubeSpawner(KubeSpawner):
    """KubeSpawner with the hepml-hub spawn form, limits, GPU availability and images.

    Configure the form exactly as for the embedded spawner (``stacks`` with an ``image``
    each, ``backends``, ``limits``, ``form_defaults``); everything else is KubeSpawner's
    (storage, culling, networking come from the Z2JH chart). ``profile_list`` must stay
    empty: the form replaces it.
    """

    stacks = List(
        Dict(),
        config=True,
        help="""Software stacks offered in the form, as dicts of :class:`hepml_hub.options.Stack`.

        On Kubernetes each stack names its container ``image``. Example::

            c.HepmlKubeSpawner.stacks = [
                {"name": "cpu", "display_name": "CPU",
                 "image": "registry.example/hepml-singleuser-cpu:0.1.0"},
                {"name": "gpu", "display_name": "GPU (CUDA)", "gpu": True,
                 "image": "registry.example/hepml-singleuser-gpu:0.1.0"},
            ]
        """,
    )
    backends = List(
        Unicode(),
        ["local", "kubernetes", "gateway"],
        config=True,
        help="""Dask backends offered as the session's default, first is pre-selected.

        Example: ``c.HepmlKubeSpawner.backends = ["gateway", "local"]``
        """,
    )
    limits = Dict(
        config=True,
        help="""Resource limits per group; ``"*"`` applies to everybody (as ``HepmlSpawner``).

        Keys per group: ``cores``, ``memory`` (GiB), ``gpus``, ``stacks``, ``backends``.
        Example::

            c.HepmlKubeSpawner.limits = {
                "*": {"cores": 4, "memory": 16, "gpus": 0, "stacks": ["cpu"]},
                "gpu": {"gpus": 2, "stacks": ["cpu", "gpu"]},
            }
        """,
    )
    form_defaults = Dict(
        {"cores": 2, "memory": 4},
        config=True,
        help="""Pre-selected form values (clipped to the user's limits).

        Example: ``c.HepmlKubeSpawner.form_defaults = {"cores": 2, "memory": 8}``
        """,
    )
    gpu_resource = Unicode(
        GPU_RESOURCE,
        config=True,
        help="""Extended resource name of one GPU, as the device plugin advertises it.

        Example: ``c.HepmlKubeSpawner.gpu_resource = "nvidia.com/gpu"``
        """,
    )
    gpu_tolerations = List(
        Dict(),
        [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
        config=True,
        help="""Tolerations added to pods with GPUs (the taints of the GPU node pool).

        Example: ``[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]``
        """,
    )
    gpu_node_selector = Dict(
        config=True,
        help="""Node labels a pod with GPUs must match (the GPU node pool's labels).

        Example: ``c.HepmlKubeSpawner.gpu_node_selector = {"hepml.io/node-pool": "gpu"}``
        """,
    )
    cpu_guarantee_fraction = Float(
        0.5,
        config=True,
        help="""CPU guaranteed (requested) per pod as a fraction of its limit, in (0, 1].

        Example: ``c.HepmlKubeSpawner.cpu_guarantee_fraction = 0.25`` (overcommit 4x)
        """,
    )
    mem_guarantee_fraction = Float(
        1.0,
        config=True,
        help="""Memory guaranteed per pod as a fraction of its limit, in (0, 1].

        Below 1 the node may run out of memory and kill pods. Example: ``0.75``
        """,
    )
    gpu_inventory_ttl = Float(
        10.0,
        config=True,
        help="""Seconds a count of free GPUs in the cluster is reused before asking again.

        Example: ``c.HepmlKubeSpawner.gpu_inventory_ttl = 30``
        """,
    )
    tutorials_dir = Unicode(
        "/opt/hepml/tutorials",
        config=True,
        help="""Folder *in the single-user image* copied to ``~/tutorials`` ("" to skip).

        Example: ``c.HepmlKubeSpawner.tutorials_dir = "/opt/hepml/tutorials"``
        """,
    )
    session = Any(None, allow_none=True, help="Validated SessionOptions of the current spawn.")

    #: (monotonic time, (free, total)) of the last GPU count, shared by all spawners
    _gpu_cache: tuple[float, tuple[int, int]] | None = None

    @validate("profile_list")
    def _no_profiles(self, proposal):
        if proposal.value:
            raise ValueError(
                "HepmlKubeSpawner renders the hepml-hub form: leave profile_list empty and "
                "describe stacks in HepmlKubeSpawner.stacks (each with an image)"
            )
        return proposal.value

    @validate("cpu_guarantee_fraction", "mem_guarantee_fraction")
    def _check_fraction(self, proposal):
        if not 0 < proposal.value <= 1:
            raise ValueError(
                f"HepmlKubeSpawner.{proposal.trait.name} must be in (0, 1], got {proposal.value}"
            )
        return proposal.value

    @default("stacks")
    def _stacks_default(self) -> list[dict]:
        return [
            {
                "name": "cpu",
                "display_name": "CPU",
                "description": "Python 3.11 with coffea, uproot, XGBoost, Keras 3 on TensorFlow",
            },
            {
                "name": "gpu",
                "display_name": "GPU (CUDA)",
                "description": "The same stack with NVIDIA GPUs; needs a free GPU",
                "gpu": True,
            },
        ]

    @default("limits")
    def _limits_default(self) -> dict:
        return {
            "*": {"cores": 2, "memory": 8, "gpus": 0, "stacks": ["cpu"]},
            "gpu": {"gpus": 1, "stacks": ["cpu", "gpu"]},
        }

    @default("options_form")
    def _options_form_default(self):
        return self.render_options_form

    @default("options_from_form")
    def _options_from_form_default(self):
        return self.options_from_form_data

    @default("apply_user_options")
    def _apply_user_options_default(self):
        return self.apply_session_options

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # what the configuration set, which each session extends (never accumulates)
        self._configured = {name: copy.deepcopy(getattr(self, name)) for name in POD_TRAITS}

    # -- the form: the embedded spawner's own logic, on this spawner's traits -------------

    spec = HepmlSpawner.spec
    user_groups = HepmlSpawner.user_groups
    _prefill = HepmlSpawner._prefill
    options_form_html = HepmlSpawner.options_form_html
    _cpu_fallback_url = HepmlSpawner._cpu_fallback_url
    _refuse = HepmlSpawner._refuse
    options_from_form_data = HepmlSpawner.options_from_form_data
    options_from_query = HepmlSpawner.options_from_query

    async def _list_gpus(self) -> tuple[int, int]:
        """Ask the API server for nodes and unfinished pods, and count GPUs."""
        timeout = self.k8s_api_request_timeout
        nodes = await self.api.list_node(_request_timeout=timeout)
        pods = await self.api.list_pod_for_all_namespaces(
            field_selector="status.phase!=Succeeded,status.phase!=Failed",
            _request_timeout=timeout,
        )
        serialize = self.api.api_client.sanitize_for_serialization
        return count_gpus(
            serialize(nodes).get("items", []), serialize(pods).get("items", []), self.gpu_resource
        )

    async def gpu_availability(self, *, fresh: bool = False) -> tuple[int, int]:
        """(free, total) GPUs in the cluster; (0, 0) when the API cannot be asked.

        Counting needs ``list`` on nodes and on pods in all namespaces (the chart's
        ClusterRole). Without it no GPU is offered, as on a machine without NVML.
        """
        cache = HepmlKubeSpawner._gpu_cache
        if not fresh and cache and time.monotonic() - cache[0] < self.gpu_inventory_ttl:
            return cache[1]
        try:
            counts = await self._list_gpus()
        except Exception as exc:  # ApiException (403 without the ClusterRole), timeouts
            self.log.warning("Cannot count the cluster's GPUs (%s): none offered", exc)
            counts = (0, 0)
        HepmlKubeSpawner._gpu_cache = (time.monotonic(), counts)
        return counts

    def _validate(self, raw) -> SessionOptions:
        cache = HepmlKubeSpawner._gpu_cache
        free, total = cache[1] if cache else (None, None)
        return validate_options(
            raw, self.spec, groups=self.user_groups(), gpus_free=free, gpus_total=total
        )

    async def render_options_form(self, spawner=None) -> str:
        """HTML of the spawn form for this user (their limits, the cluster's free GPUs)."""
        free, total = await self.gpu_availability()
        return self.options_form_html(free, total)

    # -- options -> pod ------------------------------------------------------------------

    def apply_session(self, session: SessionOptions) -> None:
        """Set the pod's image, resources, tolerations and node selector from ``session``."""
        settings = pod_settings(
            session,
            self.spec.stack(session.stack),
            base=self._configured,
            gpu_resource=self.gpu_resource,
            gpu_tolerations=self.gpu_tolerations,
            gpu_node_selector=self.gpu_node_selector,
            cpu_guarantee_fraction=self.cpu_guarantee_fraction,
            mem_guarantee_fraction=self.mem_guarantee_fraction,
        )
        if not settings["image"]:
            raise OptionsError("stack", f"{session.stack!r} has no image configured")
        for name, value in settings.items():
            setattr(self, name, value)
        self.session = session

    async def apply_session_options(self, spawner, user_options: dict) -> None:
        """Re-validate ``user_options`` (the REST API skips the form), then apply them."""
        if self.spec.limits_for(self.user_groups()).gpus:
            await self.gpu_availability(fresh=True)  # GPU requests are checked on fresh counts
        session = self._validate(user_options)
        self.apply_session(session)
        self.user_options = session.to_dict()
        if getattr(self, "orm_spawner", None) is not None:
            self.orm_spawner.user_options = session.to_dict()

    async def load_user_options(self):
        """JupyterHub < 5.3 has no ``apply_user_options`` hook: apply them at start."""
        if self.session is None:
            await self.apply_session_options(self, self.user_options or {})
        return await super().load_user_options()

    def get_env(self) -> dict:
        """KubeSpawner's environment plus the session's choices and the tutorials source."""
        env = super().get_env()
        if self.session is not None:
            session_env = self.session.environment()
            # the device plugin exposes the pod's GPUs; an empty list would hide them
            session_env.pop("CUDA_VISIBLE_DEVICES", None)
            env.update(session_env)
        if self.tutorials_dir:
            env["HEPML_TUTORIALS_SRC"] = self.tutorials_dir
        return env

    async def stop(self, now: bool = False) -> None:
        """Stop the pod; the next start validates its options again."""
        try:
            await super().stop(now=now)
        finally:
            self.session = None
            HepmlKubeSpawner._gpu_cache = None  # a GPU may just have been freed
