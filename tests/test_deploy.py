"""The container and cluster recipes: Dockerfile, Dockerfile.emulator, docker-compose.yml,
deploy/kubernetes/ and the workflows. Every YAML file is parsed and its structure checked: the
services and objects that must be there, names that must match across files, LOCUST_* variables
that Locust or this suite declare, and the commands the images run being the ones the tests run.
`docker compose config` runs where docker is installed. No network.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from runpod_testkit.cli import build_parser
from runpod_testkit.emulator.server import EmulatorProcess
from runpod_testkit.loadtest.settings import OPTIONS

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
COMPOSE = ROOT / "docker-compose.yml"
YAML_FILES = sorted(
    [COMPOSE, *KUBERNETES.glob("*.yaml"), *(ROOT / ".github" / "workflows").glob("*.yml")]
)
EMULATOR_PORT = 8000


def wheel_sources() -> set[str]:
    """What a wheel build reads besides pyproject.toml: the package, each force-included folder
    (hatchling stops on a missing one) and each folder a link in the package points to (the
    build follows it: runpod_testkit/_data/contract)."""
    if sys.version_info < (3, 11):
        pytest.skip("reading pyproject.toml needs tomllib (Python 3.11+)")
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    linked = {
        (Path(folder) / name).resolve().relative_to(ROOT).as_posix()
        for package in wheel["packages"]
        for folder, names, _ in os.walk(ROOT / package)
        for name in names
        if (Path(folder) / name).is_symlink()
    }
    assert "contract" in linked
    return {*wheel["packages"], *wheel.get("force-include", {}), *linked}


def load_all(path: Path) -> list[dict[str, Any]]:
    documents = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    assert documents, f"{path.name} holds no document"
    assert all(isinstance(doc, dict) for doc in documents), path.name
    return documents


def kubernetes_objects() -> list[dict[str, Any]]:
    return [doc for path in sorted(KUBERNETES.glob("*.yaml")) for doc in load_all(path)]


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in kubernetes_objects() if o["kind"] == kind}


def dockerfile_instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) of each line of a Dockerfile, continuation lines joined."""
    text = (ROOT / name).read_text(encoding="utf-8").replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    pairs = [line.split(None, 1) for line in lines if line and not line.startswith("#")]
    return [(pair[0].upper(), pair[1] if len(pair) > 1 else "") for pair in pairs]


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def pod_containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    return containers


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda path: path.name)
def test_every_yaml_file_parses(path: Path) -> None:
    load_all(path)


# --------------------------------------------------------------------------- images


def test_the_locust_image_is_locusts_own_with_the_package_and_the_locustfile() -> None:
    steps = dockerfile_instructions("Dockerfile")
    froms = [rest for op, rest in steps if op == "FROM"]
    assert len(froms) == 1
    assert froms[0].startswith("locustio/locust:")
    # Its entry point stays Locust's `locust` (the tests run `python -m locust`): not replaced.
    assert not [op for op, _ in steps if op in ("ENTRYPOINT", "CMD")]
    runs = " ".join(rest for op, rest in steps if op == "RUN")
    assert "pip install" in runs
    copies = {rest.split()[-1]: rest.split()[-2] for op, rest in steps if op == "COPY"}
    env = dict(rest.split("=", 1) for op, rest in steps if op == "ENV")
    locustfile = Path(env["LOCUST_LOCUSTFILE"])
    assert copies[str(locustfile.parent)] == "loadtests"
    assert (ROOT / "loadtests" / locustfile.name).is_file()
    assert wheel_sources() <= set(copies.values())


def test_the_emulator_image_copies_what_the_wheel_build_reads() -> None:
    steps = dockerfile_instructions("Dockerfile.emulator")
    copied = {part for op, rest in steps if op == "COPY" for part in rest.split()[:-1]}
    assert wheel_sources() <= copied


def test_the_emulator_image_runs_the_command_the_tests_start() -> None:
    steps = dockerfile_instructions("Dockerfile.emulator")
    entry = json.loads(next(rest for op, rest in steps if op == "ENTRYPOINT"))
    # EmulatorProcess (what the tests start) runs `python -m runpod_testkit emulator ...`;
    # `runpod-testkit` is the same main (pyproject's script).
    assert entry[:2] == ["runpod-testkit", "emulator"]
    assert EmulatorProcess().command[1:4] == ["-m", "runpod_testkit", "emulator"]
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'runpod-testkit = "runpod_testkit.cli:main"' in pyproject
    args = build_parser().parse_args(entry[1:])
    assert (args.host, args.port) == ("0.0.0.0", EMULATOR_PORT)
    assert f"EXPOSE {EMULATOR_PORT}" in (ROOT / "Dockerfile.emulator").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- compose


def compose() -> dict[str, Any]:
    return load_all(COMPOSE)[0]


def test_compose_has_the_emulator_a_master_and_scalable_workers() -> None:
    services = compose()["services"]
    assert set(services) == {"emulator", "master", "worker"}
    assert services["emulator"]["build"]["dockerfile"] == "Dockerfile.emulator"
    assert services["master"]["image"] == services["worker"]["image"]
    assert "container_name" not in services["worker"]  # --scale needs generated names
    master, worker = services["master"]["environment"], services["worker"]["environment"]
    assert master["LOCUST_MODE_MASTER"] == "true"
    assert worker["LOCUST_MODE_WORKER"] == "true"
    assert worker["LOCUST_MASTER_NODE_HOST"] == "master"
    host = urlsplit(master["LOCUST_HOST"])
    assert (host.hostname, host.port) == ("emulator", EMULATOR_PORT)
    assert host.path.startswith("/v2/")
    assert services["master"]["depends_on"]["emulator"]["condition"] == "service_healthy"
    emulator_args = build_parser().parse_args(["emulator", *services["emulator"]["command"]])
    assert emulator_args.job_log.startswith("/reports/")


def compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or `docker-compose`, if this machine has either."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone is not None else None


@pytest.mark.slow
def test_compose_config_with_docker() -> None:
    command = compose_command()
    if command is None:
        pytest.skip(
            "no `docker compose` here (the CI workflow's containers job runs it); "
            "the file is checked by the structure tests above"
        )
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- kubernetes


def test_kubernetes_services_select_their_deployments() -> None:
    deployments, services = by_kind("Deployment"), by_kind("Service")
    assert set(deployments) == {
        "runpod-testkit-master",
        "runpod-testkit-worker",
        "runpod-testkit-emulator",
    }
    assert set(services) == {"runpod-testkit-master", "runpod-testkit-emulator"}
    for name, deployment in deployments.items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items(), name
    for name, service in services.items():
        target = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= target.items(), name
        ports = {p["name"] for c in pod_containers(deployments[name]) for p in c["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= ports, name


def test_kubernetes_wiring_master_workers_emulator_and_the_key() -> None:
    deployments, services = by_kind("Deployment"), by_kind("Service")
    secret = next(iter(by_kind("Secret").values()))
    master = container_env(pod_containers(deployments["runpod-testkit-master"])[0])
    worker = container_env(pod_containers(deployments["runpod-testkit-worker"])[0])
    assert master["LOCUST_MODE_MASTER"] == "true"
    assert worker["LOCUST_MODE_WORKER"] == "true"
    assert worker["LOCUST_MASTER_NODE_HOST"] == "runpod-testkit-master"
    master_ports = {p["port"] for p in services["runpod-testkit-master"]["spec"]["ports"]}
    assert 5557 in master_ports  # Locust's default master port, which workers dial
    host = urlsplit(master["LOCUST_HOST"])
    emulator_ports = {p["port"] for p in services["runpod-testkit-emulator"]["spec"]["ports"]}
    assert host.hostname == "runpod-testkit-emulator"
    assert host.port in emulator_ports
    for env in (master, worker):
        reference = env["RUNPOD_API_KEY"]["secretKeyRef"]
        assert reference["name"] == secret["metadata"]["name"]
        assert reference["key"] in secret["stringData"]
    emulator = pod_containers(deployments["runpod-testkit-emulator"])[0]
    build_parser().parse_args(["emulator", *emulator["args"]])


def test_the_operator_example_is_a_locusttest_with_the_key_from_the_secret() -> None:
    (test,) = load_all(KUBERNETES / "locusttest.yaml")
    assert (test["apiVersion"], test["kind"]) == ("locust.io/v2", "LocustTest")
    spec = test["spec"]
    assert (
        spec["image"] == pod_containers(by_kind("Deployment")["runpod-testkit-master"])[0]["image"]
    )
    assert isinstance(spec["worker"]["replicas"], int)
    assert spec["env"]["secretRefs"] == [{"name": next(iter(by_kind("Secret")))}]
    for role in ("master", "worker"):
        command = shlex.split(spec[role]["command"])
        assert command[:2] == ["--locustfile", "/home/locust/loadtests/locustfile.py"]


# --------------------------------------------------------------------------- env var names


@pytest.fixture(scope="module")
def declared() -> dict[str, list[str]]:
    """Locust's parser with this suite's options, as `locust -f loadtests/locustfile.py` has
    it (in a child process: importing Locust monkey-patches the process)."""
    program = (
        "import json, locust.argument_parser as ap\n"
        "from runpod_testkit.loadtest.run import install\n"
        "import runpod_testkit.loadtest.webhooks\n"
        "install()\n"
        "parser = ap.get_parser()\n"
        "print(json.dumps({'env': sorted(a.env_var for a in parser._actions\n"
        "    if getattr(a, 'env_var', None)),\n"
        "    'flags': sorted(s for a in parser._actions for s in a.option_strings)}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60,
        check=False, env=env, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    names: dict[str, list[str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return names


def used_env_names() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for name, service in compose()["services"].items():
        used[f"compose {name}"] = set(service.get("environment", {}))
    for name, deployment in by_kind("Deployment").items():
        for container in pod_containers(deployment):
            used[f"kubernetes {name}"] = (
                set(container_env(container)) if "env" in container else set()
            )
    (test,) = load_all(KUBERNETES / "locusttest.yaml")
    used["LocustTest"] = {item["name"] for item in test["spec"]["env"]["variables"]}
    return used


@pytest.mark.slow
def test_every_locust_variable_used_is_declared(declared: dict[str, list[str]]) -> None:
    known = set(declared["env"]) | {"LOCUST_USER_CLASSES"}  # read by Locust without env_var
    assert {option.env_var for option in OPTIONS} <= known  # the suite's are on the parser
    for where, names in used_env_names().items():
        unknown = {name for name in names if name.startswith("LOCUST_")} - known
        assert not unknown, f"{where}: {sorted(unknown)} are not Locust or suite variables"
        assert names <= known | {"RUNPOD_API_KEY"}, where


@pytest.mark.slow
def test_the_operator_commands_are_locust_flags(declared: dict[str, list[str]]) -> None:
    (test,) = load_all(KUBERNETES / "locusttest.yaml")
    for role in ("master", "worker"):
        for word in shlex.split(test["spec"][role]["command"]):
            if word.startswith("--"):
                assert word in declared["flags"], word


# --------------------------------------------------------------------------- workflows


def test_the_load_workflow_runs_the_ci_script_and_uploads_the_reports() -> None:
    (workflow,) = load_all(ROOT / ".github" / "workflows" / "load.yml")
    steps = workflow["jobs"]["load"]["steps"]
    runs = [step.get("run", "") for step in steps]
    assert any("bash .ci/load-run" in run for run in runs)
    script = ROOT / ".ci" / "load-run"
    assert os.access(script, os.X_OK)
    uploads = [step for step in steps if str(step.get("uses", "")).startswith("actions/upload")]
    assert uploads
    assert uploads[0]["with"]["path"] == "reports/"
    assert uploads[0]["if"] == "always()"
    text = script.read_text(encoding="utf-8")
    for flag in ("--junitxml", "--job-stats-json", "--threshold"):
        assert flag in text
    containers = workflow["jobs"]["containers"]["steps"]
    commands = " ".join(step.get("run", "") for step in containers)
    assert "docker compose config" in commands
    assert "--scale worker=2" in commands
