"""The spawn form as data and the validation of user_options (pure, no hub)."""

from __future__ import annotations

import pytest

from hepml_hub.options import FormSpec, OptionsError, SessionOptions, validate_options

STACKS = [
    {"name": "cpu", "display_name": "CPU"},
    {"name": "gpu", "display_name": "GPU", "gpu": True},
]
LIMITS = {
    "*": {"cores": 4, "memory": 8, "gpus": 0, "stacks": ["cpu"]},
    "gpu": {"gpus": 2, "stacks": ["cpu", "gpu"]},
    "big": {"cores": 16, "memory": 64},
}


@pytest.fixture
def spec() -> FormSpec:
    return FormSpec.from_config(
        stacks=STACKS,
        backends=["local", "slurm"],
        limits=LIMITS,
        defaults={"cores": 2, "memory": 4},
    )


def test_defaults_fill_missing_fields(spec):
    opts = validate_options({}, spec, groups=[])
    assert opts == SessionOptions("cpu", 2, 4, 0, "local")


def test_form_values_are_unwrapped(spec):
    opts = validate_options(
        {"stack": ["cpu"], "cores": ["3"], "memory": ["8"], "backend": ["slurm"], "_xsrf": ["x"]},
        spec,
        groups=[],
    )
    assert (opts.cores, opts.memory, opts.backend) == (3, 8, "slurm")


def test_memory_accepts_units(spec):
    assert validate_options({"memory": "6G"}, spec, groups=[]).memory == 6
    assert validate_options({"memory": "6 GiB"}, spec, groups=[]).memory == 6


def test_group_limits_take_the_most_generous(spec):
    limits = spec.limits_for(["gpu", "big"])
    assert (limits.cores, limits.memory, limits.gpus) == (16, 64, 2)
    assert limits.stacks == frozenset({"cpu", "gpu"})
    assert validate_options({"cores": 12}, spec, groups=["big"]).cores == 12
    with pytest.raises(OptionsError, match="cores"):
        validate_options({"cores": 12}, spec, groups=["gpu"])


def test_gpu_stack_defaults_to_one_gpu_for_gpu_group(spec):
    opts = validate_options({"stack": "gpu"}, spec, groups=["gpu"], gpus_free=2, gpus_total=2)
    assert (opts.stack, opts.gpus) == ("gpu", 1)


def test_gpu_request_beyond_free_offers_cpu(spec):
    with pytest.raises(OptionsError) as err:
        validate_options(
            {"stack": "gpu", "gpus": 2}, spec, groups=["gpu"], gpus_free=1, gpus_total=2
        )
    assert err.value.field == "gpus" and err.value.cpu_fallback
    assert "only 1 of 2 free" in err.value.jupyterhub_message


BAD = [
    ({"cores": -1}, "cores"),
    ({"cores": 0}, "cores"),
    ({"cores": "abc"}, "cores"),
    ({"cores": 1e9}, "cores"),
    ({"cores": True}, "cores"),
    ({"cores": "2.5"}, "cores"),
    ({"memory": "-4"}, "memory"),
    ({"memory": "1T"}, "memory"),
    ({"memory": None}, "memory"),
    ({"stack": "tensorflow-nightly"}, "stack"),
    ({"stack": "gpu"}, "stack"),
    ({"stack": "cpu; rm -rf /"}, "stack"),
    ({"backend": "yarn"}, "backend"),
    ({"backend": ["local", "slurm"]}, "backend"),
    ({"gpus": 1}, "gpus"),
    ({"gpus": "-1"}, "gpus"),
    ({"colour": "red"}, "colour"),
    ({"cores": {"$gt": 1}}, "cores"),
    # digits of other scripts (fullwidth, Arabic-Indic) and non-ASCII spaces are not numbers
    ({"cores": "\uff12"}, "cores"),
    ({"memory": "\u0664G"}, "memory"),
    ({"cores": "2\u00a0"}, "cores"),
]


@pytest.mark.parametrize(("raw", "field"), BAD, ids=[str(b[0]) for b in BAD])
def test_bad_input_names_the_field(spec, raw, field):
    with pytest.raises(OptionsError) as err:
        validate_options(raw, spec, groups=[], gpus_free=0, gpus_total=0)
    assert err.value.field == field
    assert err.value.status_code == 400
    assert err.value.jupyterhub_message.startswith(f"{field}:")


def test_not_a_mapping_is_refused(spec):
    with pytest.raises(OptionsError, match="user_options"):
        validate_options(["cores", 2], spec, groups=[])  # type: ignore[arg-type]


def test_environment_carries_choices():
    env = SessionOptions("gpu", 3, 6, 1, "slurm").environment([1])
    assert env["HEPML_STACK"] == "gpu"
    assert env["HEPML_DASK_BACKEND"] == "slurm"
    assert env["OMP_NUM_THREADS"] == env["TF_NUM_INTRAOP_THREADS"] == "3"
    assert env["CUDA_VISIBLE_DEVICES"] == "1"
    assert env["HEPML_MEMORY"] == "6G"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stacks": [], "backends": ["local"], "limits": {"*": {}}}, "at least one stack"),
        ({"stacks": STACKS, "backends": ["yarn"], "limits": {"*": {}}}, "yarn"),
        ({"stacks": STACKS, "backends": ["local"], "limits": {"gpu": {}}}, "'\\*'"),
        (
            {
                "stacks": [{"name": "Bad Name", "display_name": "x"}],
                "backends": ["local"],
                "limits": {"*": {}},
            },
            "Bad Name",
        ),
        ({"stacks": STACKS, "backends": ["local"], "limits": {"*": {"cpus": 2}}}, "cpus"),
        # these passed, then failed every user's form with IndexError or ValueError
        (
            {"stacks": STACKS, "backends": ["local"], "limits": {"*": {"stacks": "cpu"}}},
            r"limits\['\*'\]\['stacks'\] must be a list of names, got 'cpu'",
        ),
        (
            {"stacks": STACKS, "backends": ["local"], "limits": {"*": {"stacks": ["cpux"]}}},
            r"limits\['\*'\]\['stacks'\]: 'cpux' is not one of cpu, gpu",
        ),
        (
            {"stacks": STACKS, "backends": ["local"], "limits": {"*": {"cores": "four"}}},
            r"limits\['\*'\]\['cores'\] must be a whole number >= 1, got 'four'",
        ),
        (
            {"stacks": STACKS, "backends": ["local"], "limits": {"*": {"cores": -2}}},
            "must be a whole number >= 1, got -2",
        ),
        (
            {
                "stacks": [{"name": "gpu", "display_name": "GPU", "gpu": "false"}],
                "backends": ["local"],
                "limits": {"*": {}},
            },
            "stacks: 'gpu' gpu must be true or false, got 'false'",
        ),
        ({"stacks": STACKS * 2, "backends": ["local"], "limits": {"*": {}}}, "used twice"),
        (
            {
                "stacks": STACKS,
                "backends": ["local"],
                "limits": {"*": {}},
                "defaults": {"cores": "two"},
            },
            r"form_defaults\['cores'\] must be a whole number >= 1, got 'two'",
        ),
        (
            {
                "stacks": STACKS,
                "backends": ["local"],
                "limits": {"*": {}},
                "defaults": {"backend": "kubernetes"},
            },
            r"form_defaults\['backend'\]: 'kubernetes' is not one of local",
        ),
        (
            {"stacks": STACKS, "backends": ["local"], "limits": {"*": {}}, "defaults": {"cpus": 2}},
            r"form_defaults: unknown keys \['cpus'\]",
        ),
    ],
)
def test_bad_spec_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FormSpec.from_config(**kwargs)


def test_form_defaults_are_clipped_to_what_the_user_may_use():
    # a default GPU stack: members outside "gpu" got no stack selected, members of it a
    # GPU stack with 0 GPUs; either way the untouched form was refused
    spec = FormSpec.from_config(
        stacks=STACKS, backends=["local", "slurm"], limits=LIMITS, defaults={"stack": "gpu"}
    )
    everyone = spec.default_options(spec.limits_for([]))
    assert everyone["stack"] == "cpu" and everyone["gpus"] == 0
    assert validate_options(everyone, spec, groups=[], gpus_free=1, gpus_total=1).stack == "cpu"
    members = spec.default_options(spec.limits_for(["gpu"]))
    assert members["stack"] == "gpu" and members["gpus"] == 1
    assert validate_options(members, spec, groups=["gpu"], gpus_free=1, gpus_total=1).gpus == 1


def test_a_launch_url_for_the_gpu_stack_prefills_one_gpu():
    """``/hub/spawn?stack=gpu&cores=2`` showed 0 GPUs, and Start was then refused."""
    from types import SimpleNamespace

    from hepml_hub.spawner import HepmlSpawner

    spawner = HepmlSpawner(stacks=STACKS, limits=LIMITS, backends=["local"])
    spec = spawner.spec
    for query, gpus in (
        ({"stack": [b"gpu"], "cores": [b"2"]}, "1"),
        ({"stack": [b"gpu"], "gpus": [b"2"]}, "2"),
    ):
        spawner.handler = SimpleNamespace(request=SimpleNamespace(query_arguments=query))
        values = spawner._prefill(spec, spec.limits_for(["gpu"]))
        assert values["stack"] == "gpu" and values["gpus"] == gpus


def test_a_gpu_only_site_offers_no_cpu_fallback():
    """The offer linked to ``?stack=None&...&autostart=1``, which failed again."""
    from types import SimpleNamespace

    from hepml_hub.spawner import HepmlSpawner

    spawner = HepmlSpawner(
        stacks=[STACKS[1]], limits={"*": {"cores": 2, "memory": 4, "gpus": 1}}, backends=["local"]
    )
    spawner.user = SimpleNamespace(name="alice", escaped_name="alice", groups=[])
    refused = OptionsError("gpus", "no GPU is free now", cpu_fallback=True, may_wait=True)
    out = spawner._refuse(refused, {"stack": ["gpu"], "gpus": ["1"]})
    assert out.jupyterhub_message == "gpus: no GPU is free now"
    assert "hepml-cpu-fallback" not in (getattr(out, "jupyterhub_html_message", None) or "")
