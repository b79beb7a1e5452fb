"""deploy/kubernetes/ against the code it deploys: images are Dockerfile targets, probes ask
routes the apps serve on the port their command listens on, every environment variable is a
setting of the service that gets it (or a documented system variable), the grace period
covers the shutdown the settings allow, every container is locked down, and the objects
refer to each other correctly (selectors, autoscalers, network policies).

Checked on the base as written and, where kubectl is installed, on each overlay as
`kubectl kustomize` renders it."""

import importlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import TypeAdapter
from pydantic_settings import BaseSettings

from model_service.config import ModelSettings
from pipeline_service.config import Settings
from tests.fixtures.kubernetes import (
    KUBERNETES,
    SECRET_EXAMPLE,
    Container,
    Manifest,
    base_config_maps,
    base_manifests,
    containers,
    dockerfile_env,
    dockerfile_targets,
    dockerfile_user,
    env_names,
    env_values,
    kubectl,
    load_yaml,
    named,
    of_kind,
    overlay_dirs,
    pod_spec,
    render,
)

SETTINGS: dict[str, type[BaseSettings]] = {
    "pipeline_service": Settings,
    "model_service": ModelSettings,
}
# Read by something other than the service's settings, and documented (docs/operations.md,
# docs/kubernetes.md): glibc's allocator, Python itself, prometheus-client.
SYSTEM_VARIABLES = re.compile(r"MALLOC_\w+|PYTHON\w+|PROMETHEUS_MULTIPROC_DIR")
# Time a grace period keeps beyond preStop + MODEL_TIMEOUT_S + SHUTDOWN_DRAIN_S: requests
# queued behind the CPU, the image work, closing the pool (docs/kubernetes.md "Shutdown").
GRACE_MARGIN_S = 5


@dataclass
class Deployed:
    manifests: list[Manifest]
    config_maps: dict[str, dict[str, str]]

    def settings(self, container: Container) -> dict[str, Any]:
        """The settings this container's service runs with: its defaults, then the values
        the manifests give (as pydantic-settings would read them)."""
        cls = SETTINGS[container.image_target]
        prefix = cls.model_config.get("env_prefix", "")
        values = env_values(container, self.config_maps)
        settings = {}
        for name, field in cls.model_fields.items():
            variable = prefix + name.upper()
            if variable in values:
                settings[name] = TypeAdapter(field.annotation).validate_python(values[variable])
            else:
                settings[name] = field.get_default(call_default_factory=True)
        return settings

    def deployment(self, name: str) -> Manifest:
        return named(self.manifests, "Deployment", name)

    def container(self, workload_name: str) -> Container:
        (found,) = [
            c for c in containers(self.manifests) if c.workload["metadata"]["name"] == workload_name
        ]
        return found


def _deployed(source: Path | None) -> Deployed:
    if source is None:
        return Deployed(base_manifests(), base_config_maps())
    manifests = render(source)
    maps = {m["metadata"]["name"]: m.get("data", {}) for m in of_kind(manifests, "ConfigMap")}
    return Deployed(manifests, maps)


SOURCES = [pytest.param(None, id="base")] + [
    pytest.param(
        directory,
        id=str(directory.relative_to(KUBERNETES)),
        marks=[
            pytest.mark.subprocess,
            pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed"),
        ],
    )
    for directory in overlay_dirs()
]


@pytest.fixture(scope="module", params=SOURCES)
def deployed(request: pytest.FixtureRequest) -> Deployed:
    return _deployed(request.param)


def app_of(target: str) -> FastAPI:
    """The app a Dockerfile target runs: the factory named in its uvicorn command."""
    (factory,) = re.findall(r"--factory\s+(\S+)", dockerfile_targets()[target].cmd)
    module, _, name = factory.partition(":")
    create: Callable[[], FastAPI] = getattr(importlib.import_module(module), name)
    return create()


def get_paths(app: FastAPI) -> set[str]:
    """The paths the app answers GET on, from its OpenAPI document (FastAPI includes routers
    lazily, so `app.routes` does not list them)."""
    return {path for path, methods in app.openapi()["paths"].items() if "get" in methods}


def listening_port(target: str) -> int:
    (port,) = re.findall(r"--port\s+(\d+)", dockerfile_targets()[target].cmd)
    return int(port)


def command_variables(target: str) -> set[str]:
    """Variables the image's command reads itself, e.g. PIPELINE_WORKERS for --workers."""
    return set(re.findall(r"\$\{(\w+)", dockerfile_targets()[target].cmd))


def setting_variables(cls: type[BaseSettings]) -> set[str]:
    prefix = cls.model_config.get("env_prefix", "")
    return {prefix + name.upper() for name in cls.model_fields}


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are read here"
    return selector.get("matchLabels", {}).items() <= labels.items()


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def policies_for(deployed: Deployed, workload: Manifest) -> list[Manifest]:
    return [
        p
        for p in of_kind(deployed.manifests, "NetworkPolicy")
        if matches(p["spec"]["podSelector"], pod_labels(workload))
    ]


def test_both_services_and_the_migration_are_deployed(deployed: Deployed) -> None:
    names = {(m["kind"], m["metadata"]["name"]) for m in deployed.manifests}
    assert {("Deployment", "pipeline-service"), ("Deployment", "model-service")} <= names
    assert ("Job", "pipeline-migrate") in names


def test_images_are_dockerfile_targets(deployed: Deployed) -> None:
    targets = dockerfile_targets()
    for container in containers(deployed.manifests):
        assert container.image_target in targets, container.name
        assert container.image_target in SETTINGS, container.name


def test_services_run_their_images_own_command(deployed: Deployed) -> None:
    """The Dockerfile's CMD (uvicorn, its port, *_WORKERS) is what the checks below read."""
    for deployment in of_kind(deployed.manifests, "Deployment"):
        for container in pod_spec(deployment)["containers"]:
            assert "command" not in container and "args" not in container


def test_the_migration_job_runs_migrate_and_seed(deployed: Deployed) -> None:
    job = named(deployed.manifests, "Job", "pipeline-migrate")
    (container,) = pod_spec(job)["containers"]
    assert container["command"][:2] == ["python", "-m"]
    module = container["command"][2]
    assert module == "pipeline_service.db.migrate"
    assert importlib.util.find_spec(module) is not None
    assert callable(importlib.import_module(module).main)
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_probes_ask_routes_the_app_serves_on_the_port_it_listens_on(deployed: Deployed) -> None:
    for deployment in of_kind(deployed.manifests, "Deployment"):
        (spec,) = pod_spec(deployment)["containers"]
        container = Container(deployment, spec)
        target = container.image_target
        routes = get_paths(app_of(target))
        probes = {kind: spec[f"{kind}Probe"] for kind in ("startup", "liveness", "readiness")}
        assert probes["liveness"]["httpGet"]["path"] == "/healthz", container.name
        assert probes["readiness"]["httpGet"]["path"] == "/readyz", container.name
        for kind, probe in probes.items():
            assert probe["httpGet"]["path"] in routes, f"{container.name} {kind}"
            port = container.port(probe["httpGet"]["port"])
            assert port == listening_port(target), f"{container.name} {kind}"
        assert listening_port(target) in dockerfile_targets()[target].exposed


def test_every_environment_variable_is_a_setting_of_its_service(deployed: Deployed) -> None:
    for container in containers(deployed.manifests):
        target = container.image_target
        known = setting_variables(SETTINGS[target]) | command_variables(target)
        for name in env_names(container, deployed.config_maps):
            assert name in known or SYSTEM_VARIABLES.fullmatch(name), (
                f"{container.name}: {name} is no setting of {target}"
            )


def test_the_image_command_variables_exist() -> None:
    """PIPELINE_WORKERS / MODEL_WORKERS are allowed above because the commands read them."""
    assert command_variables("pipeline_service") == {"PIPELINE_WORKERS"}
    assert command_variables("model_service") == {"MODEL_WORKERS"}


def test_secrets_come_from_the_example_secret_and_its_keys(deployed: Deployed) -> None:
    (example,) = load_yaml(SECRET_EXAMPLE)
    keys = set(example["stringData"])
    used = set()
    for container in containers(deployed.manifests):
        for item in container.spec.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == example["metadata"]["name"], container.name
                assert ref["key"] in keys, f"{container.name}: {ref['key']}"
                assert ref["key"] == item["name"], container.name
                used.add(ref["key"])
    assert used == keys, "the example holds exactly what the manifests read"
    assert keys <= setting_variables(Settings)


def test_malloc_variables_are_the_images(deployed: Deployed) -> None:
    """The allocator settings in the manifests and in the Dockerfile's ENV agree: change
    both together (docs/performance.md measured them)."""
    image = {k: v for k, v in dockerfile_env().items() if k.startswith("MALLOC_")}
    assert image, "the Dockerfile sets the allocator"
    for container in containers(deployed.manifests):
        if container.workload["kind"] != "Deployment":
            continue
        values = env_values(container, deployed.config_maps)
        given = {k: v for k, v in values.items() if k.startswith("MALLOC_")}
        assert given == image, container.name


def test_the_model_service_url_is_the_model_service(deployed: Deployed) -> None:
    url = deployed.settings(deployed.container("pipeline-service"))["model_service_url"]
    service = named(deployed.manifests, "Service", "model-service")
    (port,) = service["spec"]["ports"]
    assert url == f"http://model-service:{port['port']}"


def prestop_sleep_s(container: Container) -> int:
    command = container.spec["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2, command
    return int(command[1])


def test_the_pipeline_grace_period_covers_prestop_model_call_and_drain(
    deployed: Deployed,
) -> None:
    container = deployed.container("pipeline-service")
    settings = deployed.settings(container)
    needed = (
        prestop_sleep_s(container)
        + settings["model_timeout_s"]
        + settings["shutdown_drain_s"]
        + GRACE_MARGIN_S
    )
    grace = pod_spec(container.workload)["terminationGracePeriodSeconds"]
    assert grace >= needed, f"{grace} s < {needed} s"


def test_the_model_grace_period_covers_prestop_and_the_callers_timeout(
    deployed: Deployed,
) -> None:
    model = deployed.container("model-service")
    model_timeout_s = deployed.settings(deployed.container("pipeline-service"))["model_timeout_s"]
    grace = pod_spec(model.workload)["terminationGracePeriodSeconds"]
    assert grace >= prestop_sleep_s(model) + model_timeout_s


def test_readiness_waits_longer_than_readyz_does(deployed: Deployed) -> None:
    container = deployed.container("pipeline-service")
    readiness_timeout_s = deployed.settings(container)["readiness_timeout_s"]
    assert container.spec["readinessProbe"]["timeoutSeconds"] > readiness_timeout_s


def effective(container: Container, field: str) -> Any:
    """A securityContext field as the kubelet applies it: the container's, else the pod's."""
    own = container.spec.get("securityContext", {})
    return own.get(field, pod_spec(container.workload).get("securityContext", {}).get(field))


def test_every_container_is_locked_down(deployed: Deployed) -> None:
    uid = int(dockerfile_user().split(":")[0])
    for container in containers(deployed.manifests):
        own = container.spec["securityContext"]
        assert effective(container, "runAsNonRoot") is True, container.name
        assert effective(container, "runAsUser") == uid, container.name
        assert own["allowPrivilegeEscalation"] is False, container.name
        assert own["readOnlyRootFilesystem"] is True, container.name
        assert own.get("privileged", False) is False, container.name
        assert own["capabilities"] == {"drop": ["ALL"]}, container.name
        assert effective(container, "seccompProfile") == {"type": "RuntimeDefault"}
        pod = pod_spec(container.workload)
        assert pod["automountServiceAccountToken"] is False, container.name
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), container.name


def test_only_empty_dirs_are_writable(deployed: Deployed) -> None:
    for container in containers(deployed.manifests):
        volumes = {v["name"]: v for v in pod_spec(container.workload).get("volumes", [])}
        for mount in container.spec.get("volumeMounts", []):
            volume = volumes[mount["name"]]
            if not mount.get("readOnly"):
                assert "emptyDir" in volume, f"{container.name}: {mount['mountPath']}"
                assert volume["emptyDir"].get("sizeLimit"), container.name


def test_the_services_can_write_their_temp_dir(deployed: Deployed) -> None:
    """Uploads over 1 MiB are spooled to the temp dir (Starlette), and with several workers
    the metrics files live there (service_kit/multiprocess.py): /tmp must be writable."""
    for deployment in of_kind(deployed.manifests, "Deployment"):
        (spec,) = pod_spec(deployment)["containers"]
        assert "/tmp" in {m["mountPath"] for m in spec["volumeMounts"]}, deployment["metadata"]


def cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def test_every_container_has_requests_and_limits(deployed: Deployed) -> None:
    for container in containers(deployed.manifests):
        resources = container.spec["resources"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources[kind]), f"{container.name} {kind}"
        assert cores(resources["requests"]["cpu"]) <= cores(resources["limits"]["cpu"])


def test_the_pipeline_runs_one_worker_per_core_of_its_limit(deployed: Deployed) -> None:
    container = deployed.container("pipeline-service")
    values = env_values(container, deployed.config_maps)
    limit = cores(container.spec["resources"]["limits"]["cpu"])
    assert int(values["PIPELINE_WORKERS"]) == limit
    # Python 3.11 counts the node's cores, not the limit: the thread pool is set explicitly.
    assert "CPU_THREADS" in values


def test_autoscalers_scale_each_deployment_on_cpu(deployed: Deployed) -> None:
    autoscalers = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in of_kind(deployed.manifests, "HorizontalPodAutoscaler")
    }
    for deployment in of_kind(deployed.manifests, "Deployment"):
        name = deployment["metadata"]["name"]
        assert "replicas" not in deployment["spec"], f"{name}: the autoscaler owns replicas"
        hpa = autoscalers[name]
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["minReplicas"] >= 2, f"{name}: one pod would be a disruption"
        (metric,) = hpa["spec"]["metrics"]
        assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
        assert metric["resource"]["target"]["type"] == "Utilization"


def test_services_and_disruption_budgets_select_their_pods(deployed: Deployed) -> None:
    for deployment in of_kind(deployed.manifests, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = pod_labels(deployment)
        assert matches(deployment["spec"]["selector"], labels)
        service = named(deployed.manifests, "Service", name)
        assert service["spec"]["selector"].items() <= labels.items()
        (container,) = pod_spec(deployment)["containers"]
        for port in service["spec"]["ports"]:
            Container(deployment, container).port(port["targetPort"])  # it exists
        budget = named(deployed.manifests, "PodDisruptionBudget", name)
        assert matches(budget["spec"]["selector"], labels)


def peers(policies: list[Manifest], direction: str) -> list[dict[str, Any]]:
    key = "from" if direction == "ingress" else "to"
    return [peer for p in policies for rule in p["spec"].get(direction, []) for peer in rule[key]]


def allowed_ports(policies: list[Manifest], direction: str) -> set[int | str]:
    return {
        port["port"]
        for p in policies
        for rule in p["spec"].get(direction, [])
        for port in rule.get("ports", [])
    }


def test_everything_is_denied_unless_allowed(deployed: Deployed) -> None:
    deny = named(deployed.manifests, "NetworkPolicy", "default-deny")
    assert deny["spec"]["podSelector"] == {}
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]


def test_only_the_pipeline_service_reaches_the_model_service(deployed: Deployed) -> None:
    model = deployed.deployment("model-service")
    pipeline = deployed.deployment("pipeline-service")
    policies = policies_for(deployed, model)
    sources = peers(policies, "ingress")
    assert sources, "some policy lets the pipeline service in"
    for peer in sources:
        assert set(peer) == {"podSelector"}, "same namespace, no address ranges"
        assert matches(peer["podSelector"], pod_labels(pipeline))
        assert not matches(peer["podSelector"], pod_labels(model))
    assert peers(policies, "egress") == [], "the model service reaches nothing"


def rules(policies: list[Manifest], direction: str) -> list[dict[str, Any]]:
    return [rule for p in policies for rule in p["spec"].get(direction, [])]


def test_the_pipeline_service_reaches_the_model_service(deployed: Deployed) -> None:
    model = deployed.deployment("model-service")
    model_port = deployed.container("model-service").port("http")
    pipeline = policies_for(deployed, deployed.deployment("pipeline-service"))
    to_model = [
        rule
        for rule in rules(pipeline, "egress")
        if any(
            "podSelector" in peer and matches(peer["podSelector"], pod_labels(model))
            for peer in rule["to"]
        )
    ]
    assert [port["port"] for rule in to_model for port in rule["ports"]] == [model_port]
    assert peers(pipeline, "ingress"), "something may reach the pipeline service"


@pytest.mark.parametrize("workload", ["Deployment/pipeline-service", "Job/pipeline-migrate"])
def test_what_uses_the_database_reaches_postgresql_and_dns(
    deployed: Deployed, workload: str
) -> None:
    kind, name = workload.split("/")
    policies = policies_for(deployed, named(deployed.manifests, kind, name))
    assert {5432, 53} <= allowed_ports(policies, "egress")
