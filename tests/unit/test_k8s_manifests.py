"""The Kubernetes manifests (k8s/) render, and hold what docs/deploy.md promises of them.

Renders every kustomization with `kubectl kustomize` (kubectl is required, as in CI); no cluster,
no network. Schemas and the policy scan are scripts/validate-k8s.sh's job (`make k8s-check`).
"""

import functools
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway_service.settings import GatewaySettings, load_settings
from gateway_service.supervisor import KILL_GRACE_SECONDS

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
KUSTOMIZATIONS = sorted(path.parent for path in K8S.rglob("kustomization.yaml"))
IMAGE_DOCKERFILES = ("gateway_service", "storage_service", "nginx")

Manifest = dict[str, Any]


@functools.cache
def render(directory: Path) -> list[Manifest]:
    """The objects `kubectl kustomize` renders (once per directory: kubectl takes ~0.5 s)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is required to render k8s/ (kubectl 1.27 or later)")
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(
    scope="module",
    params=KUSTOMIZATIONS,
    ids=[str(path.relative_to(K8S)) for path in KUSTOMIZATIONS],
)
def manifests(request: pytest.FixtureRequest) -> list[Manifest]:
    directory: Path = request.param
    return render(directory)


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def deployments(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == "Deployment"]


def containers(manifests: list[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(pod spec, container) for every container of every Deployment."""
    for deployment in deployments(manifests):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"]:
            yield pod, container


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and selector.items() <= labels.items()


def pod_labels(deployment: Manifest) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def settings_map(manifests: list[Manifest], container: Manifest) -> dict[str, str]:
    """The ConfigMap that the container takes its environment from."""
    (source,) = container["envFrom"]
    data: dict[str, str] = one(manifests, "ConfigMap", source["configMapRef"]["name"])["data"]
    return data


def gateway_pod(manifests: list[Manifest]) -> tuple[Manifest, Manifest]:
    """(pod spec, its one container) of the gateway Deployment."""
    pod: Manifest = one(manifests, "Deployment", "gateway")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def images_user_id() -> int:
    """The numeric uid every image runs as (its Dockerfile's `USER uid:gid`)."""
    uids: set[int] = set()
    for directory in IMAGE_DOCKERFILES:
        dockerfile = (REPO / directory / "Dockerfile").read_text()
        uids.update(int(uid) for uid in re.findall(r"^USER (\d+)", dockerfile, re.MULTILINE))
    assert len(uids) == 1, f"the images run as different or no numeric users: {sorted(uids)}"
    return uids.pop()


def test_both_the_base_and_the_nginx_overlay_are_checked() -> None:
    assert [path.relative_to(K8S) for path in KUSTOMIZATIONS] == [
        Path("base"),
        Path("overlays/nginx"),
    ]


class TestEveryContainer:
    def test_is_ready_and_alive_by_its_health_endpoint_on_its_own_port(
        self, manifests: list[Manifest]
    ) -> None:
        for _, container in containers(manifests):
            ports = {port["name"]: port["containerPort"] for port in container["ports"]}
            for probe in ("readinessProbe", "livenessProbe"):
                check = container[probe]["httpGet"]
                assert check["path"] == "/health", (container["name"], probe)
                assert check["port"] in ports, (container["name"], probe, check["port"])

    def test_has_cpu_and_memory_requests_and_limits(self, manifests: list[Manifest]) -> None:
        for _, container in containers(manifests):
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, container["name"]

    def test_runs_as_the_images_non_root_user_with_nothing_to_escalate(
        self, manifests: list[Manifest]
    ) -> None:
        uid = images_user_id()
        for pod, container in containers(manifests):
            context = {**pod["securityContext"], **container["securityContext"]}
            assert context["runAsNonRoot"] is True
            assert context["runAsUser"] == uid
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            assert pod["automountServiceAccountToken"] is False

    def test_has_a_read_only_root_and_a_volume_for_tmp(self, manifests: list[Manifest]) -> None:
        for pod, container in containers(manifests):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            volumes = {volume["name"]: volume for volume in pod["volumes"]}
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], container["name"]

    def test_pulls_a_tagged_image_only_when_the_node_lacks_it(
        self, manifests: list[Manifest]
    ) -> None:
        for _, container in containers(manifests):
            assert re.fullmatch(r"service-assembly/(gateway|storage|nginx):dev", container["image"])
            assert container["imagePullPolicy"] == "IfNotPresent"


class TestStorage:
    def test_the_storage_service_is_headless_over_the_storage_pods(
        self, manifests: list[Manifest]
    ) -> None:
        service = one(manifests, "Service", "storage")
        deployment = one(manifests, "Deployment", "storage")

        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["ports"][0]["port"] == 8000
        assert selects(service["spec"]["selector"], pod_labels(deployment))

    def test_each_replica_is_named_after_its_pod_and_has_no_fault_injection(
        self, manifests: list[Manifest]
    ) -> None:
        (container,) = one(manifests, "Deployment", "storage")["spec"]["template"]["spec"][
            "containers"
        ]
        env = {variable["name"]: variable for variable in container["env"]}

        assert env["INSTANCE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["ENABLE_FAULT_INJECTION"]["value"] == "false"


class TestGateway:
    def test_its_storage_services_setting_names_the_headless_service(
        self, manifests: list[Manifest]
    ) -> None:
        (container,) = one(manifests, "Deployment", "gateway")["spec"]["template"]["spec"][
            "containers"
        ]
        storage = one(manifests, "Service", "storage")

        url = urlsplit(settings_map(manifests, container)["STORAGE_SERVICES"])

        assert (url.hostname, url.port) == ("storage", storage["spec"]["ports"][0]["port"])

    def test_the_service_reaches_the_gateway_pods_on_their_http_port(
        self, manifests: list[Manifest]
    ) -> None:
        service = one(manifests, "Service", "gateway")
        deployment = one(manifests, "Deployment", "gateway")

        assert selects(service["spec"]["selector"], pod_labels(deployment))
        assert service["spec"]["ports"][0]["targetPort"] == "http"

    def test_base_settings_are_real_gateway_settings_with_valid_values(self) -> None:
        manifests = render(K8S / "base")
        (container,) = one(manifests, "Deployment", "gateway")["spec"]["template"]["spec"][
            "containers"
        ]
        settings = settings_map(manifests, container)
        known = {name.upper() for name in GatewaySettings.model_fields}

        assert set(settings) <= known, f"not gateway settings: {sorted(set(settings) - known)}"
        load_settings(**{name.lower(): value for name, value in settings.items()})

    def test_workers_are_the_cpu_limit_in_whole_cpus(self, manifests: list[Manifest]) -> None:
        _, container = gateway_pod(manifests)
        env = {variable["name"]: variable for variable in container["env"]}

        assert env["WORKERS"]["valueFrom"]["resourceFieldRef"] == {
            "containerName": container["name"],
            "resource": "limits.cpu",
            "divisor": "1",
        }
        assert "cpu" in container["resources"]["limits"]
        # `env` wins over `envFrom`: a WORKERS line in the settings would be silently ignored.
        assert "WORKERS" not in settings_map(manifests, container)
        # The image's CMD, whose `worker_processes auto` the entrypoint replaces by WORKERS.
        assert "args" not in container
        assert "command" not in container

    def test_a_stop_has_time_for_the_pause_the_shutdown_and_the_gateways_kill_grace(
        self, manifests: list[Manifest]
    ) -> None:
        pod, container = gateway_pod(manifests)
        sleep, pause = container["lifecycle"]["preStop"]["exec"]["command"]
        default = GatewaySettings.model_fields["shutdown_timeout"].default
        shutdown = float(settings_map(manifests, container).get("SHUTDOWN_TIMEOUT", default))

        assert sleep == "sleep"
        assert pod["terminationGracePeriodSeconds"] > float(pause) + shutdown + KILL_GRACE_SECONDS

    def test_nginx_overlay_runs_nginx_on_its_port_with_a_writable_conf_d(self) -> None:
        manifests = render(K8S / "overlays" / "nginx")
        pod = one(manifests, "Deployment", "gateway")["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        mounts = {mount["mountPath"] for mount in container["volumeMounts"]}

        assert container["image"] == "service-assembly/nginx:dev"
        assert container["ports"] == [{"name": "http", "containerPort": 8080}]
        assert {"/tmp", "/etc/nginx/conf.d"} <= mounts


class TestAvailability:
    def test_every_deployment_has_a_disruption_budget_and_spreads(
        self, manifests: list[Manifest]
    ) -> None:
        budgets = [m for m in manifests if m["kind"] == "PodDisruptionBudget"]
        for deployment in deployments(manifests):
            labels = pod_labels(deployment)
            name = deployment["metadata"]["name"]
            assert any(selects(b["spec"]["selector"]["matchLabels"], labels) for b in budgets), name
            spread = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
            assert {c["topologyKey"] for c in spread} >= {"kubernetes.io/hostname"}, name
            for constraint in spread:
                assert selects(constraint["labelSelector"]["matchLabels"], labels), name

    def test_every_object_is_labelled_part_of_service_assembly_in_its_namespace(
        self, manifests: list[Manifest]
    ) -> None:
        (namespace,) = [m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"]
        for manifest in manifests:
            metadata = manifest["metadata"]
            assert metadata["labels"]["app.kubernetes.io/part-of"] == "service-assembly"
            if manifest["kind"] != "Namespace":
                assert metadata["namespace"] == namespace, metadata["name"]
