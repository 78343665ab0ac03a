"""images/: what can be checked without a Docker engine.

hadolint passes on every Dockerfile; every package a Dockerfile installs comes from uv.lock
(or, for the GPU image, from the CUDA overlay that is checked against the lock); versions
pinned in Dockerfiles agree with the repository; the images run as NB_UID 1000, carry OCI
labels and run the smoke script; the smoke script passes here, and in a clean environment
installed from the lock.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "images"
DOCKERFILES = sorted(IMAGES.glob("*/Dockerfile"))
HADOLINT = Path(sys.executable).parent / "hadolint"
UV = ROOT / ".tools" / "bin" / "uv"
OVERLAY = IMAGES / "singleuser-gpu" / "cuda-overlay.txt"
OCI_LABELS = ("title", "description", "version", "revision", "created", "licenses", "base.name")


def locked() -> dict[str, str]:
    data = tomllib.loads((ROOT / "uv.lock").read_text())
    return {canonicalize_name(p["name"]): p["version"] for p in data["package"] if "version" in p}


LOCK = locked()


@dataclass
class Instruction:
    name: str
    args: str
    line: int


def instructions(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined (comments dropped)."""
    result: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        pending += " " + line.removesuffix("\\")
        if not line.endswith("\\"):
            name, _, args = pending.strip().partition(" ")
            result.append(Instruction(name.upper(), args.strip(), start))
            pending = ""
    return result


def shell_commands(run: str) -> list[list[str]]:
    """The simple commands of a RUN line (split on &&, ||, ;, |), as word lists."""
    run = re.sub(r"^(--\S+\s+)+", "", run)  # RUN --mount=... flags
    words = shlex.split(run, posix=True)
    commands, current = [], []
    for word in words:
        if word in ("&&", "||", ";", "|"):
            commands.append(current)
            current = []
        else:
            current.append(word)
    commands.append(current)
    return [c for c in commands if c]


_VALUE_FLAGS = {"-r", "--requirement", "-c", "--constraint", "--python", "-p", "--index-url",
                "--extra-index-url", "--no-install-package", "-o", "--output-file", "--target",
                "--prefix"}  # fmt: skip


def install_problems(text: str, *, overlay: Path | None = OVERLAY) -> list[str]:
    """Every way a Dockerfile installs Python packages from outside the lock."""
    problems = []
    for ins in instructions(text):
        if ins.name != "RUN":
            continue
        for words in shell_commands(ins.args):
            where = f"line {ins.line}: {' '.join(words)[:80]}"
            tool = Path(words[0]).name
            if tool in ("conda", "mamba", "micromamba") and "install" in words:
                problems.append(f"{where}: {tool} install bypasses the lock")
            pip = tool in ("pip", "pip3") or words[1:3] == ["-m", "pip"]
            if pip and "install" in words:
                problems.append(f"{where}: pip install bypasses the lock (use uv)")
            if tool != "uv" or len(words) < 2:
                continue
            if words[1] in ("sync", "export") and not {"--locked", "--frozen"} & set(words):
                problems.append(f"{where}: uv {words[1]} without --locked/--frozen")
            if words[1] == "add":
                problems.append(f"{where}: uv add changes the lock")
            if words[1:3] != ["pip", "install"]:
                continue
            args, skip, files, constrained = words[3:], False, [], False
            for i, word in enumerate(args):
                if skip:
                    skip = False
                    continue
                if word in _VALUE_FLAGS:
                    skip = True
                    if word in ("-r", "--requirement"):
                        files.append(args[i + 1])
                    if word in ("-c", "--constraint"):
                        constrained = True
                    continue
                if word.startswith("-"):
                    continue
                if word.startswith((".", "/")):
                    problems.append(f"{where}: installs a path {word!r} (use uv sync)")
                    continue
                requirement = Requirement(word)
                name = canonicalize_name(requirement.name)
                if name not in LOCK:
                    problems.append(f"{where}: {requirement.name} is not in uv.lock")
                pins = [s.version for s in requirement.specifier if s.operator == "=="]
                if pins and pins != [LOCK.get(name)]:
                    problems.append(f"{where}: {word} but uv.lock has {LOCK.get(name)}")
                if not pins and not constrained:
                    problems.append(f"{where}: {word} unpinned and not constrained by the lock")
            for file in files:
                if overlay is None or Path(file).name != overlay.name:
                    problems.append(f"{where}: requirements {file} are not the lock's overlay")
                elif "--require-hashes" not in args:
                    problems.append(f"{where}: the overlay must be installed with --require-hashes")
    return problems


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_passes(dockerfile):
    result = subprocess.run(
        [str(HADOLINT), "--config", str(ROOT / ".hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_config_ignores_nothing_without_a_reason():
    config = yaml.safe_load((ROOT / ".hadolint.yaml").read_text())
    lines = (ROOT / ".hadolint.yaml").read_text().splitlines()
    for rule in config.get("ignored", []):
        (line,) = [line for line in lines if rule in line]
        assert "#" in line, f"{rule} ignored without a reason comment"


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN pip install requests\nUSER root\n")
    result = subprocess.run(
        [str(HADOLINT), "--config", str(ROOT / ".hadolint.yaml"), str(bad)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    for rule in ("DL3006", "DL3013", "DL3002", "DL3026"):
        assert rule in result.stdout, result.stdout


def test_there_are_the_three_images():
    assert {p.parent.name for p in DOCKERFILES} == {"hub", "singleuser-cpu", "singleuser-gpu"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_every_install_comes_from_the_lock(dockerfile):
    assert install_problems(dockerfile.read_text()) == []


def test_the_lock_check_finds_installs_from_elsewhere():
    text = """FROM quay.io/x/y:1
RUN pip install requests && uv pip install --system xgboost==1.0.0 \\
    numpy notapackage
RUN uv pip install -c lock.txt jupyterhub==9.9.9 && uv sync --no-dev
RUN uv pip install -r other.txt && mamba install -y root
"""
    problems = "\n".join(install_problems(text))
    assert "pip install bypasses the lock" in problems
    assert f"xgboost==1.0.0 but uv.lock has {LOCK['xgboost']}" in problems
    assert "numpy unpinned and not constrained" in problems
    assert "notapackage is not in uv.lock" in problems
    assert "jupyterhub==9.9.9 but uv.lock" in problems
    assert "uv sync without --locked" in problems
    assert "requirements other.txt are not the lock's overlay" in problems
    assert "mamba install bypasses the lock" in problems


def _from_images(dockerfile: Path) -> list[str]:
    return [i.args.split()[0] for i in instructions(dockerfile.read_text()) if i.name == "FROM"]


def test_pinned_versions_agree_with_the_repository():
    makefile = (ROOT / "Makefile").read_text()
    uv_version = re.search(r"^UV_VERSION := (\S+)", makefile, re.M).group(1)
    chart = yaml.safe_load((ROOT / "k8s" / "hepml-hub" / "Chart.yaml").read_text())
    z2jh = {d["name"]: d["version"] for d in chart["dependencies"]}["jupyterhub"]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    python = re.search(r">=(\d+\.\d+)", requires).group(1)
    for dockerfile in DOCKERFILES:
        text = dockerfile.read_text()
        images = _from_images(dockerfile)
        assert images[0] == f"ghcr.io/astral-sh/uv:{uv_version}", dockerfile
        for image in images[1:]:
            tag = image.rsplit(":", 1)[-1]
            assert ":" in image and tag != "latest", image  # pinned by tag
        for version in re.findall(r"--python (\d+\.\d+)", text):
            assert version == python, dockerfile
        assert f"VERSION={chart['appVersion']}" in text
    (hub_base,) = _from_images(IMAGES / "hub" / "Dockerfile")[1:]
    assert hub_base == f"quay.io/jupyterhub/k8s-hub:{z2jh}"
    (gpu_base,) = _from_images(IMAGES / "singleuser-gpu" / "Dockerfile")[1:]
    assert gpu_base.startswith("quay.io/jupyter/") and ":cuda" in gpu_base
    (cpu_base,) = _from_images(IMAGES / "singleuser-cpu" / "Dockerfile")[1:]
    assert cpu_base.startswith("quay.io/jupyter/")
    date = re.compile(r"\d{4}-\d{2}-\d{2}$")
    assert date.search(cpu_base).group() == date.search(gpu_base).group()  # one Stacks build


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_images_run_as_nb_user_with_oci_labels(dockerfile):
    steps = instructions(dockerfile.read_text())
    users = [i.args for i in steps if i.name == "USER"]
    assert users[-1] == "1000"
    labels = " ".join(i.args for i in steps if i.name == "LABEL")
    for key in OCI_LABELS:
        assert f"org.opencontainers.image.{key}=" in labels, key
    if dockerfile.parent.name.startswith("singleuser"):
        stack = dockerfile.parent.name.removeprefix("singleuser-")
        last_user = max(i for i, s in enumerate(steps) if s.name == "USER")
        smoke = [s for s in steps[last_user:] if s.name == "RUN" and "smoke.py" in s.args]
        assert smoke and f"--stack {stack}" in smoke[0].args  # the smoke test runs as NB_USER


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_build_context_sends_what_is_copied(dockerfile):
    """Each COPY source passes the Dockerfile's own .dockerignore (an allow-list)."""
    patterns = [
        line.strip()
        for line in dockerfile.with_name("Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*"  # everything else (.venv, node_modules, data) stays out

    def sent(path: str) -> bool:
        keep = False
        for pattern in patterns:
            negate = pattern.startswith("!")
            pattern = pattern.lstrip("!")
            if fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/"):
                keep = negate
        return keep

    for ins in instructions(dockerfile.read_text()):
        if ins.name != "COPY" or ins.args.startswith("--from"):
            continue
        *sources, _dest = ins.args.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert sent(source), f"{source} is excluded by the .dockerignore"
    assert not sent(".venv") and not sent("node_modules")


def test_cuda_overlay_agrees_with_the_lock():
    """The GPU image swaps tensorflow-cpu for tensorflow[and-cuda] at the same version."""
    text = OVERLAY.read_text()
    blocks = re.findall(
        r"^([A-Za-z0-9._-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)", text, re.M
    )
    pins = {canonicalize_name(n): v for n, v, _ in blocks}
    assert len(blocks) == len(re.findall(r"^[A-Za-z0-9]", text, re.M))  # every entry hashed
    assert pins.pop("tensorflow") == LOCK["tensorflow-cpu"]
    for name in pins:
        assert name not in LOCK, f"{name} is in the lock: install it from there"
        assert name.startswith("nvidia-"), f"{name}: only CUDA wheels may be added"
    # the and-cuda extra of the locked TensorFlow is fully met by the overlay and the lock
    extra = [
        Requirement(r)
        for r in importlib.metadata.requires("tensorflow-cpu") or []
        if 'extra == "and-cuda"' in r
    ]
    assert extra, "tensorflow-cpu's metadata lists no and-cuda extra"
    for requirement in extra:
        name = canonicalize_name(requirement.name)
        version = pins.get(name, LOCK.get(name))
        assert version and requirement.specifier.contains(version), requirement


def _smoke(python: Path, *args: str) -> tuple[int, dict, str]:
    """Run images/smoke.py; ``args`` starting with "-I" go to the interpreter."""
    flags = [a for a in args if a == "-I"]
    args = tuple(a for a in args if a != "-I")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
    result = subprocess.run(
        [str(python), *flags, str(IMAGES / "smoke.py"), *args],
        capture_output=True,
        text=True,
        cwd="/",  # import the installed packages, not the working tree
        env={**env, "OMP_NUM_THREADS": "1"},
        timeout=600,
    )
    return result.returncode, json.loads(result.stdout), result.stderr


@pytest.mark.slow
def test_smoke_script_passes_in_the_project_environment():
    code, report, err = _smoke(Path(sys.executable))
    assert code == 0, err[-3000:]
    assert report["failures"] == []
    assert report["keras_fit"]["backend"] == "tensorflow"
    assert report["keras_fit"]["accuracy"] >= 0.7
    assert report["xgboost_fit"]["accuracy"] >= 0.9
    assert "analysis_lib.datasets" in report["project"]
    detected = report["gpu_detected"]
    assert detected["nvml"] == report["nvml"]["count"]
    assert detected["xgboost"].startswith("cuda" if detected["nvml"] else "cpu")


def test_smoke_script_fails_without_the_stack():
    """The interpreter the environment was made from has none of the stack: exit 1."""
    base = (
        Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    if not base.exists() or Path(sys.prefix) == Path(sys.base_prefix):
        pytest.skip("needs the project's virtual environment and its base interpreter")
    code, report, _err = _smoke(base, "-I")
    assert code == 1
    failed = {f.split(":")[0] for f in report["failures"]}
    assert {"imports", "project", "keras_fit", "xgboost_fit"} <= failed
    assert report["gpu_detected"]["nvml"] == 0


def _load_smoke():
    spec = importlib.util.spec_from_file_location("hepml_images_smoke", IMAGES / "smoke.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_distribution(root: Path, name: str, requires: list[str]) -> None:
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", "Version: 1.0"]
    (info / "METADATA").write_text("\n".join(lines + [f"Requires-Dist: {r}" for r in requires]))


def test_smoke_requirement_check(tmp_path, monkeypatch):
    smoke = _load_smoke()
    assert smoke.requirements_met({})["distributions"] > 100  # the project environment is whole
    _fake_distribution(tmp_path, "hepml-fake-gpu", ["hepml-fake-cpu-wheel>=1", "numpy"])
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="hepml-fake-gpu requires hepml-fake-cpu-wheel>=1"):
        smoke.requirements_met({})
    # a substitute stands in for a missing distribution, as tensorflow does for tensorflow-cpu
    assert smoke.requirements_met({"hepml-fake-cpu-wheel": "numpy"})
    assert smoke.SUBSTITUTES["gpu"] == {"tensorflow-cpu": "tensorflow"}


@pytest.mark.gpu
def test_smoke_script_finds_and_uses_the_gpu():
    code, report, err = _smoke(Path(sys.executable), "--require-gpu")
    assert code == 0, err[-3000:]
    assert report["nvml"]["count"] > 0 and report["xgboost_fit"]["device"].startswith("cuda")


@pytest.mark.slow
def test_lock_installs_into_a_clean_environment_and_smoke_passes(tmp_path):
    """What the images do: `uv sync --locked --no-dev --no-editable`, then the smoke test."""
    if not UV.exists():
        pytest.skip(f"{UV} missing (make setup installs it)")
    venv = tmp_path / "venv"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIRTUAL_ENV")},
        "UV_PROJECT_ENVIRONMENT": str(venv),
    }
    start = time.perf_counter()
    subprocess.run(
        [str(UV), "sync", "--locked", "--no-dev", "--no-editable", "--python",
         os.environ.get("PYTHON_BASE", "/usr/bin/python3.11"), "-q"],
        cwd=ROOT, env=env, check=True, timeout=1200,
    )  # fmt: skip
    install_seconds = time.perf_counter() - start
    print(f"clean install from uv.lock: {install_seconds:.1f} s")
    code, report, err = _smoke(venv / "bin" / "python")
    assert code == 0, err[-3000:]
    assert report["failures"] == []
    site = venv / "lib" / "python3.11" / "site-packages"
    assert (site / "hepml_hub" / "jupyter_config" / "jupyter_server_config.json").is_file()
    assert not (site / "pytest").exists()  # dev tools stay out of the images


def test_gpu_stack_installs_the_gpu_extras_and_cpu_does_not():
    """jupyterlab-nvdashboard comes from the lock's `gpu` extra, in the GPU image only."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "jupyterlab-nvdashboard" in extras["gpu"]
    assert "jupyterlab-nvdashboard" in LOCK
    gpu = (IMAGES / "singleuser-gpu" / "Dockerfile").read_text()
    cpu = (IMAGES / "singleuser-cpu" / "Dockerfile").read_text()
    gpu_syncs = re.findall(r"uv sync [^\n]*", gpu)
    assert gpu_syncs and all("--extra gpu" in line for line in gpu_syncs), gpu_syncs
    assert "--extra gpu" not in cpu
