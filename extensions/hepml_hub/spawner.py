"""The embedded deployment's spawner: one local process per user, fast and isolated.

:class:`HepmlSpawner` adds to JupyterHub's ``LocalProcessSpawner``:

- the SWAN-like spawn form (:mod:`hepml_hub.options`), rendered from data, pre-filled from
  a launch URL (``/hub/spawn?stack=cpu&cores=2``; add ``autostart=1`` to skip the form);
- server-side validation of ``user_options`` for the form *and* the REST API;
- per-user system accounts with private homes when the hub runs as root
  (:mod:`hepml_hub.accounts`);
- GPUs handed out whole through ``CUDA_VISIBLE_DEVICES`` (:mod:`hepml_hub.gpus`);
- fast spawns: servers are forked from a pre-imported interpreter
  (:mod:`hepml_hub.forkserver`), and ``start()`` returns only once the server listens,
  so the hub's own back-off polling finds it up at the first try.

Examples
--------
In ``jupyterhub_config.py``::

    c.JupyterHub.spawner_class = "hepml"
    c.HepmlSpawner.limits = {"*": {"cores": 4, "memory": 16, "gpus": 0},
                             "gpu": {"gpus": 1}}
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from html import escape
from pathlib import Path
from subprocess import Popen
from urllib.parse import urlencode

import jinja2
from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from jupyterhub.utils import random_port, url_path_join
from traitlets import Any, Bool, Dict, Float, List, Unicode, default, validate

from hepml_hub import accounts, forkserver
from hepml_hub.gpus import GpuAllocator, GpuUnavailable
from hepml_hub.options import FormSpec, OptionsError, SessionOptions, validate_options

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
)
#: Jupyter configuration shared by every user's server (see jupyter_config/README.md).
JUPYTER_CONFIG = Path(__file__).parent / "jupyter_config"
#: One allocator per hub process: GPUs of this machine shared by all local spawners.
GPU_ALLOCATOR = GpuAllocator()


#: What JupyterHub's spawn page logs, with the traceback, when ``options_from_query`` raises.
QUERY_FAILED = "Failed to spawn single-user server with query arguments"


class PrefillForm(Exception):
    """Raised by ``options_from_query`` to show the form pre-filled instead of spawning."""

    jupyterhub_message = None
    jupyterhub_html_message = None


class LaunchUrlLogFilter(logging.Filter):
    """One line, not an ERROR with a traceback, for what a launch URL causes by design.

    JupyterHub's spawn page logs every exception of ``options_from_query`` as "Failed to
    spawn single-user server with query arguments", with its traceback. Two of them are
    no failure of the hub: a launch URL without ``autostart`` raises :class:`PrefillForm`
    on purpose (an INFO line), and a refused option raises
    :class:`~hepml_hub.options.OptionsError`, which the user sees with status 400 (a
    WARNING naming the option). Every other record passes unchanged.

    Examples
    --------
    >>> record = logging.LogRecord("JupyterHub", logging.ERROR, __file__, 1, QUERY_FAILED,
    ...                            (), (OptionsError, OptionsError("cores", "too many"), None))
    >>> LaunchUrlLogFilter().filter(record), record.levelname, record.getMessage()
    (True, 'WARNING', 'Launch URL refused: cores: too many')
    >>> record.exc_info is None
    True
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info
        if not exc or not isinstance(exc[0], type):
            return True
        if issubclass(exc[0], PrefillForm):
            level, message = logging.INFO, "Launch URL without autostart: serving the form"
        elif issubclass(exc[0], OptionsError) and record.msg == QUERY_FAILED:
            error = exc[1]
            reason = error.log_message % error.args if error.args else error.log_message
            level, message = logging.WARNING, f"Launch URL refused: {reason}"
        else:
            return True
        record.levelno, record.levelname = level, logging.getLevelName(level)
        record.msg, record.args = message, ()
        record.exc_info, record.exc_text = None, None
        return True

    @classmethod
    def install(cls, log: logging.Logger | logging.LoggerAdapter) -> None:
        """Add the filter to ``log`` (the hub's logger) once."""
        logger = log.logger if isinstance(log, logging.LoggerAdapter) else log
        if not any(isinstance(f, cls) for f in logger.filters):
            logger.addFilter(cls())


class HepmlSpawner(LocalProcessSpawner):
    """Local-process spawner with the hepml-hub form, accounts, GPUs and fast start."""

    data_dir = Unicode(
        "data",
        config=True,
        help="""Directory under which user homes live (``<data_dir>/homes/<user>``).

        The embedded hub sets it to ``HepmlHub.data_dir`` (set that one there). Example:
        ``c.HepmlSpawner.data_dir = "/srv/hepml"``
        """,
    )
    stacks = List(
        Dict(),
        config=True,
        help="""Software stacks offered in the form, as dicts of :class:`hepml_hub.options.Stack`.

        Embedded deployments map a stack to a Python environment (``python``); Kubernetes
        maps it to an ``image``. Example::

            c.HepmlSpawner.stacks = [
                {"name": "cpu", "display_name": "CPU", "python": "/opt/env/bin/python"},
                {"name": "gpu", "display_name": "GPU (CUDA)", "gpu": True},
            ]
        """,
    )
    backends = List(
        Unicode(),
        ["local", "slurm", "htcondor", "pbs", "kubernetes", "gateway"],
        config=True,
        help="""Dask backends offered as the session's default, first is pre-selected.

        Example: ``c.HepmlSpawner.backends = ["local", "slurm"]``
        """,
    )
    limits = Dict(
        config=True,
        help="""Resource limits per group; ``"*"`` applies to everybody.

        Keys per group: ``cores``, ``memory`` (GiB), ``gpus``, ``stacks``, ``backends``.
        A user gets the most generous value over their groups. Example::

            c.HepmlSpawner.limits = {
                "*": {"cores": 4, "memory": 16, "gpus": 0, "stacks": ["cpu"]},
                "gpu": {"gpus": 2, "stacks": ["cpu", "gpu"]},
            }
        """,
    )
    form_defaults = Dict(
        config=True,
        help="""Pre-selected form values (clipped to the user's limits).

        Example: ``c.HepmlSpawner.form_defaults = {"cores": 2, "memory": 4}``
        """,
    )
    system_user_prefix = Unicode(
        accounts.PREFIX,
        config=True,
        help="""Prefix of the system accounts created for hub users when the hub runs as root.

        Example: ``c.HepmlSpawner.system_user_prefix = "jupyter-"`` gives ``jupyter-alice``.
        """,
    )
    tutorials_dir = Unicode(
        "",
        config=True,
        help="""Folder copied to ``~/tutorials`` on a user's first spawn ("" to skip).

        Later spawns add new tutorials only; the user's edits are never overwritten.
        Example: ``c.HepmlSpawner.tutorials_dir = "/opt/hepml-hub/tutorials"``
        """,
    )
    forkserver_socket = Unicode(
        "",
        config=True,
        help="""Unix socket of the fork server (:mod:`hepml_hub.forkserver`); "" disables it.

        Stacks whose ``python`` is the fork server's interpreter are forked from it, which
        skips the server's import time. Example:
        ``c.HepmlSpawner.forkserver_socket = "/srv/hepml/run/forkserver.sock"``
        """,
    )
    ready_poll_interval = Float(
        0.02,
        config=True,
        help="""Seconds between checks that a starting server listens on its port.

        Example: ``c.HepmlSpawner.ready_poll_interval = 0.05``
        """,
    )
    isolate_users = Bool(
        config=True,
        help="""Run each user's server as their own system account (needs root).

        Defaults to True when the hub runs as root, False otherwise (a personal hub, where
        every server runs as the hub's user). Example: ``c.HepmlSpawner.isolate_users = True``
        """,
    )

    gpu_ids = List(help="GPU indices held by this server (CUDA_VISIBLE_DEVICES).")
    session = Any(None, allow_none=True, help="Validated SessionOptions of the current spawn.")

    @default("isolate_users")
    def _isolate_default(self) -> bool:
        return accounts.running_as_root()

    @validate("isolate_users")
    def _check_isolate(self, proposal):
        if proposal.value and not accounts.running_as_root():
            raise ValueError("isolate_users needs the hub to run as root")
        if not proposal.value and accounts.running_as_root():
            raise ValueError(
                "isolate_users=False on a hub running as root would run every user's server "
                "as root; run a personal hub as an ordinary user instead"
            )
        return proposal.value

    @validate("system_user_prefix")
    def _check_prefix(self, proposal):
        # without a prefix, hub user "root" or "daemon" would be mapped to that account
        if not accounts.valid_prefix(proposal.value):
            raise ValueError(
                f"system_user_prefix must start with a lower-case letter and hold only "
                f"a-z, 0-9, _ and - (at most 8 characters), got {proposal.value!r}"
            )
        return proposal.value

    @default("stacks")
    def _stacks_default(self) -> list[dict]:
        return [
            {
                "name": "cpu",
                "display_name": "CPU",
                "description": "Python 3.11 with coffea, uproot, XGBoost, Keras 3 on TensorFlow",
                "python": sys.executable,
            },
            {
                "name": "gpu",
                "display_name": "GPU (CUDA)",
                "description": "The same stack with NVIDIA GPUs; needs a free GPU",
                "gpu": True,
                "python": sys.executable,
            },
        ]

    @default("limits")
    def _limits_default(self) -> dict:
        memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024**3
        return {
            "*": {
                "cores": os.cpu_count() or 1,
                "memory": max(1, int(memory_gib)),
                "gpus": 0,
                "stacks": ["cpu"],
            },
            "gpu": {"gpus": 8, "stacks": ["cpu", "gpu"]},
        }

    @default("form_defaults")
    def _form_defaults_default(self) -> dict:
        return {"cores": 2, "memory": 4}

    @default("options_form")
    def _options_form_default(self):
        return self.render_options_form

    @default("options_from_form")
    def _options_from_form_default(self):
        return self.options_from_form_data

    @default("apply_user_options")
    def _apply_user_options_default(self):
        return self.apply_session_options

    # -- the form -------------------------------------------------------------------

    @property
    def spec(self) -> FormSpec:
        """The form as data, built from this spawner's settings."""
        return FormSpec.from_config(
            stacks=self.stacks,
            backends=self.backends,
            limits=self.limits,
            defaults=self.form_defaults,
        )

    @property
    def gpu_owner(self) -> str:
        """Key of this server in the GPU allocator: ``user/server-name``."""
        return f"{self.user.name}/{self.name}"

    def user_groups(self) -> list[str]:
        """Names of the hub groups of this spawner's user."""
        return sorted(g.name for g in self.user.groups)

    def _validate(self, raw) -> SessionOptions:
        return validate_options(
            raw,
            self.spec,
            groups=self.user_groups(),
            gpus_free=GPU_ALLOCATOR.free(),
            gpus_total=GPU_ALLOCATOR.total(),
        )

    def _prefill(self, spec: FormSpec, limits) -> dict:
        values = spec.default_options(limits)
        previous = getattr(self.orm_spawner, "user_options", None) or {}
        values.update({k: v for k, v in previous.items() if k in values})
        handler = getattr(self, "handler", None)
        given = set()
        if handler is not None:
            for key, raw in handler.request.query_arguments.items():
                key = key.removeprefix("opt-")
                if key in values and raw:
                    values[key] = raw[0].decode("utf8", "replace")
                    given.add(key)
        # a launch URL that picks a GPU stack but no count: one GPU, as validation assumes
        if "gpus" not in given and str(values.get("gpus")) == "0" and limits.gpus >= 1:
            try:
                if spec.stack(str(values["stack"])).gpu:
                    values["gpus"] = 1
            except KeyError:
                pass  # an unknown stack: the form shows none selected
        return {k: str(v) for k, v in values.items()}

    async def render_options_form(self, spawner=None) -> str:
        """HTML of the spawn form for this user (their limits, live GPU availability)."""
        return self.options_form_html(GPU_ALLOCATOR.free(), GPU_ALLOCATOR.total())

    def options_form_html(self, gpus_free: int | None, gpus_total: int | None) -> str:
        """HTML of the spawn form for this user's limits, showing ``gpus_free`` of
        ``gpus_total`` GPUs (what the spawner counted: its allocator, or the cluster)."""
        spec = self.spec
        limits = spec.limits_for(self.user_groups())
        memory_choices = sorted(
            {m for m in (1, 2, 4, 8, 16, 32, 64, 128, 256) if m <= limits.memory} | {limits.memory}
        )
        return _TEMPLATES.get_template("options_form.html").render(
            stacks=spec.allowed_stacks(limits),
            backends=spec.allowed_backends(limits),
            cores=list(range(1, limits.cores + 1)),
            memory=memory_choices,
            gpus=list(range(0, limits.gpus + 1)),
            gpus_free=gpus_free,
            gpus_total=gpus_total,
            values=self._prefill(spec, limits),
        )

    def _cpu_fallback_url(self, raw) -> str | None:
        """The launch URL that starts the same request on a CPU stack (None: there is none
        this user may use)."""
        spec = self.spec
        limits = spec.limits_for(self.user_groups())
        cpu = next((s.name for s in spec.allowed_stacks(limits) if not s.gpu), None)
        if cpu is None:
            return None
        values = {
            k: v[0] if isinstance(v, list) and v else v
            for k, v in (raw or {}).items()
            if k in ("cores", "memory", "backend")
        }
        query = urlencode({**values, "stack": cpu, "gpus": 0, "autostart": 1})
        return url_path_join(self.hub.base_url, "spawn", self.user.escaped_name) + "?" + query

    def _refuse(self, exc: OptionsError, raw) -> OptionsError:
        """Add the offer to start on CPU instead to a refused GPU request."""
        fallback = self._cpu_fallback_url(raw) if exc.cpu_fallback else None
        if fallback is not None:
            form = url_path_join(self.hub.base_url, "spawn", self.user.escaped_name)
            wait = (
                (
                    f' or wait and <a id="hepml-check-again" '
                    f'href="{escape(form)}">check again</a> '
                    "(the form shows how many GPUs are free)"
                )
                if exc.may_wait
                else ""
            )
            exc.jupyterhub_html_message = (
                f"<strong>{escape(exc.jupyterhub_message)}</strong><br>"
                f'<a class="btn btn-sm btn-jupyter mt-2" id="hepml-cpu-fallback" '
                f'href="{escape(fallback)}">Start on CPU instead</a>{wait}.'
            )
            exc.jupyterhub_message = None
        return exc

    def options_from_form_data(self, form_data: dict) -> dict:
        """Validate the submitted form; the result becomes ``user_options``."""
        try:
            return self._validate(form_data).to_dict()
        except OptionsError as exc:
            raise self._refuse(exc, form_data) from None

    def options_from_query(self, query_data: dict) -> dict:
        """Launch URLs pre-fill the form; with ``autostart=1`` they spawn directly."""
        LaunchUrlLogFilter.install(self.log)  # what the hub logs of the raises below
        query = dict(query_data)
        autostart = query.pop("autostart", None)
        try:
            options = self._validate(query).to_dict()
        except OptionsError as exc:
            raise self._refuse(exc, query) from None
        if autostart and autostart[0] not in ("0", "false", ""):
            return options
        raise PrefillForm("launch URL: review the pre-filled form")

    async def apply_session_options(self, spawner, user_options: dict) -> None:
        """Re-validate ``user_options`` (the REST API skips the form), then apply them."""
        session = self._validate(user_options)
        try:
            self.gpu_ids = GPU_ALLOCATOR.allocate(self.gpu_owner, session.gpus)
        except GpuUnavailable as exc:
            raise OptionsError("gpus", str(exc), cpu_fallback=True) from None
        self.session = session
        # what the session really got (defaults filled in) is what the API shows
        self.user_options = self.orm_spawner.user_options = session.to_dict()
        self.cpu_limit = float(session.cores)
        self.mem_limit = session.memory * 1024**3

    # -- accounts and environment ------------------------------------------------------

    @property
    def home(self) -> Path:
        """This user's home (private when users are isolated)."""
        return Path(self.data_dir).resolve() / "homes" / self.user.name

    @property
    def system_user(self) -> str:
        """The system account the server runs as."""
        if self.isolate_users:
            return accounts.system_username(self.user.name, self.system_user_prefix)
        import getpass

        return getpass.getuser()

    def _ensure_account(self) -> tuple[int | None, int | None, list[int]]:
        if self.isolate_users:
            entry = accounts.ensure_account(self.system_user, self.home)
            return entry.pw_uid, entry.pw_gid, os.getgrouplist(entry.pw_name, entry.pw_gid)
        accounts.ensure_private_dir(self.home, os.getuid(), os.getgid())
        return None, None, []

    def user_env(self, env: dict) -> dict:
        """USER, HOME and SHELL of the account the server runs as."""
        env["USER"] = env["LOGNAME"] = self.system_user
        env["HOME"] = str(self.home)
        env["SHELL"] = "/bin/bash"
        return env

    def _python(self) -> str:
        name = self.session.stack if self.session else None
        for stack in self.stacks:
            if stack.get("name") == name and stack.get("python"):
                return stack["python"]
        return sys.executable

    def get_env(self) -> dict:
        """The hub's environment for the server plus the session's choices."""
        env = super().get_env()
        if self.session is not None:
            env.update(self.session.environment(self.gpu_ids))
        python_bin = str(Path(self._python()).parent)
        env["PATH"] = os.pathsep.join([python_bin, env.get("PATH") or os.defpath])
        env["VIRTUAL_ENV"] = str(Path(python_bin).parent)
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            p for p in (str(JUPYTER_CONFIG), env.get("JUPYTER_CONFIG_PATH")) if p
        )
        if self.tutorials_dir:
            env["HEPML_TUTORIALS_SRC"] = str(Path(self.tutorials_dir).resolve())
        return env

    def make_preexec_fn(self, name):
        """Switch to the user's account in the child (fallback path, without fork server)."""
        if self.isolate_users:
            return set_user_setuid(self.system_user)
        return None

    # -- lifecycle ----------------------------------------------------------------------

    def get_state(self) -> dict:
        state = super().get_state()
        if self.gpu_ids:
            state["gpu_ids"] = list(self.gpu_ids)
        return state

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.gpu_ids = list(state.get("gpu_ids", []))
        if self.gpu_ids:
            GPU_ALLOCATOR.restore(self.gpu_owner, self.gpu_ids)

    def clear_state(self) -> None:
        super().clear_state()
        self.gpu_ids = []

    async def _launch(self, argv: list[str], env: dict, ids) -> int:
        uid, gid, groups = ids
        python = self._python()
        if self.forkserver_socket and python == sys.executable:
            try:
                return await asyncio.to_thread(
                    forkserver.request_spawn,
                    self.forkserver_socket,
                    argv=argv,
                    env=env,
                    cwd=str(self.home),
                    uid=uid,
                    gid=gid,
                    groups=groups,
                )
            except (OSError, RuntimeError, ValueError) as exc:
                self.log.warning("Fork server unavailable (%s); starting a fresh interpreter", exc)
        if accounts.running_as_root() and not uid:
            raise RuntimeError(f"refusing to start {self._log_name}'s server as root")
        cmd = [python, "-m", "hepml_hub.launch", *argv]
        self.proc = Popen(
            cmd,
            env=env,
            cwd=str(self.home),
            start_new_session=True,
            preexec_fn=self.make_preexec_fn(self.user.name),
            **self.popen_kwargs,
        )
        return self.proc.pid

    async def _wait_listening(self, port: int) -> None:
        while True:
            if await self.poll() is not None:
                raise RuntimeError(
                    f"{self._log_name}'s server exited while starting; "
                    "see the hub's log for its output"
                )
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(self.ready_poll_interval)
                continue
            writer.close()
            return

    async def start(self):
        """Create the account if needed, start the server, return once it listens."""
        if self.session is None:  # apply_user_options replaced by configuration
            await self.apply_session_options(self, self.user_options or {})
        ids = await asyncio.to_thread(self._ensure_account)
        if not self.port:
            self.port = random_port()
        env = self.get_env()
        self.proc = None
        self.pid = await self._launch(self.get_args(), env, ids)
        self.log.info(
            "Started %s as %s (pid %s, port %s)",
            self._log_name,
            self.system_user,
            self.pid,
            self.port,
        )
        try:
            await self._wait_listening(self.port)
        except BaseException:
            GPU_ALLOCATOR.release(self.gpu_owner)
            raise
        return (self.ip or "127.0.0.1", self.port)

    async def stop(self, now: bool = False) -> None:
        """Stop the server and give its GPUs back."""
        try:
            await super().stop(now=now)
        finally:
            GPU_ALLOCATOR.release(self.gpu_owner)
            self.session = None
