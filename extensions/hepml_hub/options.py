"""The spawn form as data, and server-side validation of ``user_options``.

The same :class:`FormSpec` drives the embedded spawner and KubeSpawner: it lists the
software stacks, the Dask backends, and per-group resource limits. Whatever reaches the
hub -- the HTML form, a launch URL or the REST API -- goes through :func:`validate_options`
before anything is started, because the REST API bypasses the form.

Examples
--------
>>> spec = FormSpec.from_config(
...     stacks=[{"name": "cpu", "display_name": "CPU"}],
...     backends=["local", "slurm"],
...     limits={"*": {"cores": 4, "memory": 8, "gpus": 0}},
... )
>>> opts = validate_options({"stack": "cpu", "cores": "2", "memory": "4"}, spec, groups=())
>>> opts.cores, opts.memory, opts.backend
(2, 4, 'local')
>>> try:
...     validate_options({"cores": "-1"}, spec, groups=())
... except OptionsError as err:
...     print(err.field, "|", err.jupyterhub_message)
cores | cores: must be a whole number from 1 to 4, got '-1'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from tornado import web

#: The option names a user may send. Anything else is refused.
FIELDS = ("stack", "cores", "memory", "gpus", "backend")

#: Every Dask backend the session side knows how to build.
KNOWN_BACKENDS = ("local", "slurm", "htcondor", "pbs", "kubernetes", "gateway")

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_MEMORY = re.compile(r"^\s*(\d{1,6})\s*(g|gb|gi|gib)?\s*$", re.IGNORECASE | re.ASCII)
_INTEGER = re.compile(r"^\s*\+?(\d{1,6})\s*$", re.ASCII)


class OptionsError(web.HTTPError):
    """A spawn option was refused; ``field`` names it and the message says why.

    The hub shows :attr:`jupyterhub_message` above the form, and the REST API returns it
    with status 400. ``cpu_fallback`` is set when starting on CPU instead would work, and
    ``may_wait`` when the same request may succeed later (GPUs busy now).
    """

    def __init__(
        self, field: str, message: str, *, cpu_fallback: bool = False, may_wait: bool = False
    ):
        self.field = field
        self.cpu_fallback = cpu_fallback
        self.may_wait = may_wait
        self.jupyterhub_message = f"{field}: {message}"
        super().__init__(400, "%s", self.jupyterhub_message)


@dataclass(frozen=True)
class Stack:
    """A software stack the user can pick.

    Parameters
    ----------
    name : str
        Identifier used in ``user_options`` and launch URLs, e.g. ``"cpu"``.
    display_name : str
        What the form shows.
    description : str
        One line under the name in the form.
    gpu : bool
        Whether the stack is built for GPUs (it then needs at least one GPU).
    python : str
        Embedded deployment: the interpreter of this stack's environment ("" = the hub's).
    image : str
        Kubernetes deployment: the container image of this stack.
    """

    name: str
    display_name: str
    description: str = ""
    gpu: bool = False
    python: str = ""
    image: str = ""


@dataclass(frozen=True)
class Limits:
    """What one user may ask for: the most generous of their groups' limits."""

    cores: int
    memory: int
    gpus: int
    stacks: frozenset[str] | None = None
    backends: frozenset[str] | None = None


@dataclass(frozen=True)
class FormSpec:
    """Everything the spawn form offers, as data.

    ``limits`` maps a group name to that group's limits; the key ``"*"`` applies to
    everybody. Numeric limits (``cores``, ``memory`` in GiB, ``gpus``) take the maximum
    over the user's groups, ``stacks`` and ``backends`` the union (absent from ``"*"``:
    all are allowed).
    """

    stacks: tuple[Stack, ...]
    backends: tuple[str, ...]
    limits: Mapping[str, Mapping[str, object]]
    defaults: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def from_config(
        cls,
        *,
        stacks: Iterable[Mapping[str, object]],
        backends: Iterable[str],
        limits: Mapping[str, Mapping[str, object]],
        defaults: Mapping[str, object] | None = None,
    ) -> FormSpec:
        """Build and check a spec from plain config values (lists and dicts).

        Every mistake is a ``ValueError`` naming the setting (``stacks``, ``backends``,
        ``limits[group]``, ``form_defaults``) and the value, so that a site's typo stops the
        hub at start instead of failing every user's form.
        """
        built = []
        for entry in stacks:
            if not isinstance(entry, Mapping):
                raise ValueError(f"stacks: each stack must be a dict, got {entry!r}")
            unknown = set(entry) - set(Stack.__dataclass_fields__)
            if unknown:
                raise ValueError(f"stacks: stack {entry!r}: unknown keys {sorted(unknown)}")
            try:
                stack = Stack(**entry)  # type: ignore[arg-type]
            except TypeError as exc:
                raise ValueError(f"stacks: stack {entry!r}: {exc}") from None
            if not isinstance(stack.name, str) or not _NAME.match(stack.name):
                raise ValueError(f"stacks: name {stack.name!r} must match {_NAME.pattern}")
            if not isinstance(stack.gpu, bool):
                raise ValueError(
                    f"stacks: {stack.name!r} gpu must be true or false, got {stack.gpu!r}"
                )
            if any(s.name == stack.name for s in built):
                raise ValueError(f"stacks: the name {stack.name!r} is used twice")
            built.append(stack)
        if not built:
            raise ValueError("stacks: at least one stack is needed")
        backends = _names("backends", backends)
        for backend in backends:
            if backend not in KNOWN_BACKENDS:
                raise ValueError(f"backends: {backend!r} is not one of {KNOWN_BACKENDS}")
        if not backends:
            raise ValueError("backends: at least one backend is needed")
        if not isinstance(limits, Mapping) or "*" not in limits:
            raise ValueError("limits need a '*' entry that applies to everybody")
        names = [s.name for s in built]
        for group, entry in limits.items():
            where = f"limits[{group!r}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where} must be a dict, got {entry!r}")
            unknown = set(entry) - {"cores", "memory", "gpus", "stacks", "backends"}
            if unknown:
                raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
            _config_counts(where, entry)
            for key, known in (("stacks", names), ("backends", backends)):
                if key in entry:
                    for name in _names(f"{where}[{key!r}]", entry[key]):
                        if name not in known:
                            raise ValueError(
                                f"{where}[{key!r}]: {name!r} is not one of {', '.join(known)}"
                            )
        defaults = dict(defaults or {})
        unknown = set(defaults) - set(FIELDS)
        if unknown:
            raise ValueError(f"form_defaults: unknown keys {sorted(unknown)}; use {FIELDS}")
        _config_counts("form_defaults", defaults)
        for key, known in (("stack", names), ("backend", backends)):
            if key in defaults and defaults[key] not in known:
                raise ValueError(
                    f"form_defaults[{key!r}]: {defaults[key]!r} is not one of {', '.join(known)}"
                )
        return cls(tuple(built), backends, dict(limits), defaults)

    def stack(self, name: str) -> Stack:
        """The stack called ``name`` (``KeyError`` if none)."""
        for stack in self.stacks:
            if stack.name == name:
                return stack
        raise KeyError(name)

    def limits_for(self, groups: Iterable[str]) -> Limits:
        """The effective limits of a member of ``groups``."""
        entries = [self.limits["*"], *(self.limits[g] for g in groups if g in self.limits)]

        def most(key: str, default: int) -> int:
            return max(int(e.get(key, default)) for e in entries)  # type: ignore[arg-type]

        def union(key: str) -> frozenset[str] | None:
            if key not in entries[0]:
                return None  # everybody may use all
            return frozenset(v for e in entries for v in e.get(key, ()))  # type: ignore[attr-defined]

        return Limits(
            most("cores", 1), most("memory", 1), most("gpus", 0), union("stacks"), union("backends")
        )

    def allowed_stacks(self, limits: Limits) -> list[Stack]:
        """The stacks ``limits`` allow, in form order."""
        return [s for s in self.stacks if limits.stacks is None or s.name in limits.stacks]

    def allowed_backends(self, limits: Limits) -> list[str]:
        """The backends ``limits`` allow, in form order."""
        return [b for b in self.backends if limits.backends is None or b in limits.backends]

    def default_options(self, limits: Limits) -> dict[str, object]:
        """Pre-selected form values, clipped to ``limits`` (a default stack or backend the
        user may not use gives way to the first one they may; a GPU stack gets one GPU)."""
        stacks = self.allowed_stacks(limits)
        cpu_stacks = [s for s in stacks if not s.gpu] or stacks
        stack = self.defaults.get("stack", cpu_stacks[0].name)
        if stack not in [s.name for s in stacks]:
            stack = cpu_stacks[0].name
        backends = self.allowed_backends(limits)
        backend = self.defaults.get("backend", backends[0])
        gpus = min(int(self.defaults.get("gpus", 0)), limits.gpus)  # type: ignore[arg-type]
        if self.stack(str(stack)).gpu:
            gpus = max(gpus, min(1, limits.gpus))
        return {
            "stack": stack,
            "cores": min(int(self.defaults.get("cores", 1)), limits.cores),  # type: ignore[arg-type]
            "memory": min(int(self.defaults.get("memory", 2)), limits.memory),  # type: ignore[arg-type]
            "gpus": gpus,
            "backend": backend if backend in backends else backends[0],
        }


def _names(where: str, value: object) -> tuple[str, ...]:
    """A list of names from config; a bare string (YAML ``stacks: cpu``) is refused."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"{where} must be a list of names, got {value!r}")
    names = tuple(value)
    bad = [v for v in names if not isinstance(v, str)]
    if bad:
        raise ValueError(f"{where} must be a list of names, got {bad[0]!r} in it")
    return names


def _config_counts(where: str, entry: Mapping[str, object]) -> None:
    """``cores`` and ``memory`` (at least 1) and ``gpus`` (at least 0) of a config entry."""
    for key, low in (("cores", 1), ("memory", 1), ("gpus", 0)):
        value = entry.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{where}[{key!r}] must be a whole number >= {low}, got {value!r}")


@dataclass(frozen=True)
class SessionOptions:
    """Validated choices of one spawn. ``memory`` is in GiB."""

    stack: str
    cores: int
    memory: int
    gpus: int
    backend: str

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form, stored by the hub as ``user_options``."""
        return asdict(self)

    def environment(self, gpu_ids: Iterable[int | str] = ()) -> dict[str, str]:
        """Environment variables that carry these choices into the session.

        Thread pools of numpy, TensorFlow, XGBoost and friends are capped at ``cores``;
        ``CUDA_VISIBLE_DEVICES`` lists the GPUs given to this session (empty: none).

        >>> env = SessionOptions("cpu", 2, 4, 0, "local").environment()
        >>> env["OMP_NUM_THREADS"], env["HEPML_MEMORY"], env["CUDA_VISIBLE_DEVICES"]
        ('2', '4G', '')
        """
        cores = str(self.cores)
        return {
            "HEPML_STACK": self.stack,
            "HEPML_CORES": cores,
            "HEPML_MEMORY": f"{self.memory}G",
            "HEPML_GPUS": str(self.gpus),
            "HEPML_DASK_BACKEND": self.backend,
            "OMP_NUM_THREADS": cores,
            "OPENBLAS_NUM_THREADS": cores,
            "MKL_NUM_THREADS": cores,
            "NUMEXPR_MAX_THREADS": cores,
            "TF_NUM_INTRAOP_THREADS": cores,
            "TF_NUM_INTEROP_THREADS": "1" if self.cores == 1 else "2",
            "CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in gpu_ids),
            "DASK_DISTRIBUTED__WORKER__RESOURCES__GPU": str(self.gpus) if self.gpus else "",
        }


def _single(name: str, value: object) -> object:
    """Unwrap form values (``{"cores": ["2"]}``); refuse any other list."""
    if isinstance(value, list | tuple):
        if len(value) != 1 or not isinstance(value[0], str):
            raise OptionsError(name, f"expected one value, got {_printable(value)}")
        value = value[0]
    return value


def _printable(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _whole_number(name: str, value: object, low: int, high: int, unit: str = "") -> int:
    pattern = _MEMORY if unit else _INTEGER
    if isinstance(value, bool) or not isinstance(value, int | str):
        number = None
    elif isinstance(value, int):
        number = value
    else:
        match = pattern.match(value)
        number = int(match.group(1)) if match else None
    if number is None or not low <= number <= high:
        span = f"from {low} to {high}{unit}" if low <= high else f"{low} (limit is {high})"
        raise OptionsError(name, f"must be a whole number {span}, got {_printable(value)}")
    return number


def _choice(name: str, value: object, choices: list[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise OptionsError(name, f"must be one of {', '.join(choices)}; got {_printable(value)}")
    return value


def validate_options(
    raw: Mapping[str, object] | None,
    spec: FormSpec,
    *,
    groups: Iterable[str],
    gpus_free: int | None = None,
    gpus_total: int | None = None,
) -> SessionOptions:
    """Check ``raw`` user options against ``spec`` and the user's group limits.

    Parameters
    ----------
    raw : mapping or None
        Form data (values are lists of strings) or REST JSON (plain values). Missing
        fields take the defaults; unknown fields are refused.
    spec : FormSpec
        What the form offers.
    groups : iterable of str
        The user's groups, for per-group limits.
    gpus_free, gpus_total : int, optional
        Live GPU availability; when given, a request for more GPUs than are free is
        refused with ``cpu_fallback`` set.

    Returns
    -------
    SessionOptions

    Raises
    ------
    OptionsError
        Naming the first offending field.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise OptionsError("user_options", f"must be an object, got {_printable(raw)}")
    unknown = sorted(str(k) for k in raw if k not in FIELDS and k != "_xsrf")
    if unknown:
        raise OptionsError(unknown[0], f"unknown option; the options are {', '.join(FIELDS)}")
    limits = spec.limits_for(groups)
    defaults = spec.default_options(limits)
    values = {k: _single(k, raw[k]) if k in raw else defaults[k] for k in FIELDS}

    all_stacks = [s.name for s in spec.stacks]
    stack_name = _choice("stack", values["stack"], all_stacks)
    stack = spec.stack(stack_name)
    if stack_name not in [s.name for s in spec.allowed_stacks(limits)]:
        why = " (it needs GPUs; ask an admin for the 'gpu' group)" if stack.gpu else ""
        raise OptionsError(
            "stack", f"{stack_name!r} is not available to your groups{why}", cpu_fallback=stack.gpu
        )

    cores = _whole_number("cores", values["cores"], 1, limits.cores)
    memory = _whole_number("memory", values["memory"], 1, limits.memory, unit=" GiB")
    gpus_default = 1 if stack.gpu and "gpus" not in raw else values["gpus"]
    if limits.gpus == 0 and gpus_default not in (0, "0"):
        raise OptionsError(
            "gpus",
            "your groups may not use GPUs (ask an admin for the 'gpu' group)",
            cpu_fallback=True,
        )
    gpus = _whole_number("gpus", gpus_default, 0, limits.gpus)
    if stack.gpu and gpus == 0:
        raise OptionsError(
            "gpus", f"the {stack_name!r} stack needs at least one GPU", cpu_fallback=True
        )
    if gpus and not stack.gpu:
        raise OptionsError("gpus", f"the {stack_name!r} stack is CPU only; pick a GPU stack")
    if gpus and gpus_free is not None and gpus > gpus_free:
        total = "" if gpus_total is None else f" of {gpus_total}"
        raise OptionsError(
            "gpus",
            f"{gpus} requested but only {gpus_free}{total} free now",
            cpu_fallback=True,
            may_wait=True,
        )
    backend = _choice("backend", values["backend"], spec.allowed_backends(limits))
    return SessionOptions(stack_name, cores, memory, gpus, backend)
