"""Site configuration: packaged defaults, site file, session choices, per-call overrides, errors."""

from __future__ import annotations

import re

import dask.config
import pytest
import yaml

from analysis_lib.compute import ComputeConfigError, make_cluster, resolve_settings
from analysis_lib.compute.config import DEFAULTS_FILE

SESSION = {
    "HEPML_DASK_BACKEND": "slurm",
    "HEPML_CORES": "3",
    "HEPML_MEMORY": "6G",
    "HEPML_GPUS": "1",
}


def test_every_packaged_key_has_a_comment():
    lines = DEFAULTS_FILE.read_text().splitlines()
    leaves = 0
    for i, line in enumerate(lines):
        if re.match(r"^\s*[\w-]+:\s*[^\s#]", line):  # a key with a value (not a section)
            leaves += 1
            assert lines[i - 1].strip().startswith("#"), f"no comment above {line.strip()!r}"
    assert leaves > 40


def test_packaged_defaults_are_in_dask_config():
    packaged = yaml.safe_load(DEFAULTS_FILE.read_text())["hepml"]["compute"]
    assert set(packaged) <= set(dask.config.get("hepml.compute"))
    assert dask.config.get("hepml.compute.slurm.walltime") == packaged["slurm"]["walltime"]


def test_session_choices_are_the_defaults():
    settings = resolve_settings(environ=SESSION)
    assert (settings.backend, settings.cores, settings.memory, settings.gpus) == (
        "slurm",
        3,
        6 * 2**30,
        1,
    )
    assert settings.tls is True and settings.n_workers == 0


def test_fallbacks_without_session():
    settings = resolve_settings(environ={})
    assert settings.backend == dask.config.get("hepml.compute.backend") == "local"
    assert (settings.cores, settings.memory, settings.gpus, settings.tls) == (
        1,
        2 * 2**30,
        0,
        False,
    )


def test_site_file_beats_session_and_kwargs_beat_site(tmp_path):
    site = tmp_path / "site.yaml"
    site.write_text("hepml:\n  compute:\n    slurm:\n      cores: 8\n      queue: long\n")
    env = {**SESSION, "HEPML_COMPUTE_CONFIG": str(site)}
    settings = resolve_settings(environ=env)
    assert settings.cores == 8 and settings.options["queue"] == "long"
    assert settings.memory == 6 * 2**30  # not pinned by the site: the session's
    settings = resolve_settings(environ=env, cores=2, queue="short")
    assert settings.cores == 2 and settings.options["queue"] == "short"


def test_dask_config_overrides_packaged_defaults():
    with dask.config.set(
        {"hepml.compute.pbs.walltime": "02:00:00", "hepml.compute.tls.enabled": False}
    ):
        settings = resolve_settings("pbs", environ={})
    assert settings.options["walltime"] == "02:00:00" and settings.tls is False


def test_argument_beats_session_backend():
    assert resolve_settings("htcondor", environ=SESSION).backend == "htcondor"


@pytest.mark.parametrize(
    ("kwargs", "environ", "field", "value"),
    [
        ({"backend": "sge"}, {}, "backend", "sge"),
        ({}, {"HEPML_DASK_BACKEND": "yarn"}, "HEPML_DASK_BACKEND", "yarn"),
        ({"cores": -2}, {}, "cores", -2),
        ({"cores": "two"}, {}, "cores", "two"),
        ({"memory": "4 parsecs"}, {}, "memory", "4 parsecs"),
        ({"memory": "-1GiB"}, {}, "memory", "-1GiB"),
        ({}, {"HEPML_MEMORY": "lots"}, "HEPML_MEMORY", "lots"),
        ({"gpus": -1}, {}, "gpus", -1),
        ({"n_workers": -3}, {}, "n_workers", -3),
        ({"tls": "maybe"}, {}, "tls", "maybe"),
        ({"parity": "ignore"}, {}, "parity", "ignore"),
        ({"backend": "slurm", "walltime": "2h"}, {}, "walltime", "2h"),
        ({"backend": "pbs", "walltime": "1-00:00:00"}, {}, "walltime", "1-00:00:00"),
        ({"backend": "pbs", "walltime": "forever"}, {}, "walltime", "forever"),
        ({"dask_config": ["tick"]}, {}, "dask_config", ["tick"]),
        (
            {"dask_config": {"distributed.admin.tick.interval": {"x": 1}}},
            {},
            "dask_config.distributed.admin.tick.interval",
            {"x": 1},
        ),
        (
            {"dask_config": {"distributed.nanny.pre-spawn-environ.MALLOC-TRIM": 1}},
            {},
            "dask_config",
            "distributed.nanny.pre-spawn-environ.MALLOC-TRIM",
        ),
    ],
)
def test_bad_settings_name_the_value(kwargs, environ, field, value):
    kwargs = dict(kwargs)
    backend = kwargs.pop("backend", "local")
    if field == "HEPML_DASK_BACKEND":
        backend = None
    with pytest.raises(ComputeConfigError) as caught:
        resolve_settings(backend, environ=environ, **kwargs)
    assert caught.value.field == field and caught.value.value == value
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("backend", "walltime"),
    [
        ("slurm", "00:30:00"),
        ("slurm", "90"),
        ("slurm", 90),
        ("slurm", "1-12"),
        ("slurm", "2-00:00:00"),
        ("slurm", "UNLIMITED"),
        ("pbs", "04:00:00"),
        ("pbs", "3600"),
        ("htcondor", "anything"),  # no time limit of its own: passed through
    ],
)
def test_walltimes_the_batch_system_reads_pass(backend, walltime):
    settings = resolve_settings(backend, environ={}, walltime=walltime)
    assert settings.options["walltime"] == walltime


def test_make_cluster_refuses_bad_config_before_building_anything():
    with pytest.raises(ComputeConfigError, match=r"backend='lsf': unknown backend"):
        make_cluster("lsf")
    with pytest.raises(ComputeConfigError, match=r"memory='4X'"):
        make_cluster("slurm", memory="4X")
    with pytest.raises(ComputeConfigError, match=r"walltime='1 day': not a Slurm time limit"):
        make_cluster("slurm", walltime="1 day")
    # a bare number is bytes: 4 was "mem=4B" for PBS, 0 MB for HTCondor, a TypeError for Slurm
    with pytest.raises(ComputeConfigError, match=r"memory=4: 4 bytes is too small .* write 4G"):
        make_cluster("pbs", memory=4)
    for value in (0.5, float("inf"), float("nan")):
        with pytest.raises(ComputeConfigError, match=f"memory={value!r}"):
            make_cluster("slurm", memory=value)
    # one string for a list became one script line per character
    with pytest.raises(ComputeConfigError, match=r"job_script_prologue='module load cuda': expec"):
        make_cluster("slurm", job_script_prologue="module load cuda")
    with pytest.raises(ComputeConfigError, match=r"job_extra_directives=\['x'\]: expected a mapp"):
        make_cluster("htcondor", job_extra_directives=["x"], disk="1GiB")


def test_unreadable_site_file_is_named(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ComputeConfigError, match="HEPML_COMPUTE_CONFIG") as caught:
        resolve_settings(environ={"HEPML_COMPUTE_CONFIG": str(missing)})
    assert caught.value.value == str(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("hepml: [unclosed\n")
    with pytest.raises(ComputeConfigError, match="not valid YAML"):
        resolve_settings(environ={"HEPML_COMPUTE_CONFIG": str(bad)})


def test_server_dask_settings_packaged_overridden_per_site_and_per_call(tmp_path):
    packaged = yaml.safe_load(DEFAULTS_FILE.read_text())["hepml"]["compute"]["dask-config"]
    assert resolve_settings("local", environ={}).dask_config == packaged
    assert packaged["distributed.admin.tick.interval"] == "1s"
    site = tmp_path / "site.yaml"
    site.write_text(
        "hepml:\n  compute:\n    dask-config:\n      distributed.admin.tick.interval: 50ms\n"
    )
    from_site = resolve_settings("slurm", environ={"HEPML_COMPUTE_CONFIG": str(site)})
    assert from_site.dask_config == {**packaged, "distributed.admin.tick.interval": "50ms"}
    # per call: replaces the mapping ({} keeps Dask's own defaults)
    assert resolve_settings("local", environ={}, dask_config={}).dask_config == {}
    assert "dask_config" not in resolve_settings("local", environ={}).options


def test_server_dask_settings_as_environment_variables():
    from analysis_lib.compute.server_config import environment_variables

    assert environment_variables(
        {"distributed.worker.memory.monitor-interval": "500ms", "a.b": True}
    ) == {"DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "500ms", "DASK_A__B": "true"}
    # what dask itself reads back from such a variable
    env = {"DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "500ms"}
    assert dask.config.collect_env(env) == {
        "distributed": {"worker": {"memory": {"monitor_interval": "500ms"}}}
    }


def test_worker_environment_entries_keep_their_names_and_dasks_own():
    """Entries of the nanny's pre-spawn environment, as variables and applied in place."""
    import json
    import subprocess
    import sys

    from analysis_lib.compute.server_config import (
        WORKER_ENVIRON,
        applied,
        environment_variables,
    )

    entries = {
        f"{WORKER_ENVIRON}.MALLOC_TRIM_THRESHOLD_": 16777216,
        f"{WORKER_ENVIRON}.MALLOC_MMAP_THRESHOLD_": 16777216,
        "distributed.admin.tick.interval": "1s",
    }
    dasks_own = dict(dask.config.get(WORKER_ENVIRON))
    assert dasks_own["MALLOC_TRIM_THRESHOLD_"] == 65536  # what the entries replace
    # a new process reads them as strings, as the nanny sets them anyway
    names = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")
    expected = {**dasks_own, **dict.fromkeys(names, "16777216")}
    as_given = {**dasks_own, **dict.fromkeys(names, 16777216)}
    variables = environment_variables(entries)
    assert variables["DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL"] == "1s"
    assert not any("MALLOC" in name for name in variables)  # Dask would lowercase those
    # what a new process (a batch job, a pod) makes of the variables
    get = f"dask.config.get({WORKER_ENVIRON!r})"
    read = subprocess.run(
        [sys.executable, "-c", f"import json, dask, distributed; print(json.dumps({get}))"],
        env={"PATH": "/usr/bin:/bin", **variables},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(read.stdout) == expected
    # in this process (local clusters), for the block only
    with applied(entries):
        assert dask.config.get(WORKER_ENVIRON) == as_given
        assert dask.config.get("distributed.admin.tick.interval") == "1s"
    assert dask.config.get(WORKER_ENVIRON) == dasks_own
