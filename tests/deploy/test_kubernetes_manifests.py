"""deploy/kubernetes/ as files, without a cluster: every kustomization names files that exist
and every manifest is named by one; every object validates, strictly (no unknown field),
against the schemas of the oldest Kubernetes release we claim and of the newest that
kubernetes-validate ships; the Secret is only an example. Where kubectl is installed, each
overlay is rendered with `kubectl kustomize` (offline) and what it renders validates too."""

from pathlib import Path

import kubernetes_validate
import pytest

from tests.fixtures.kubernetes import (
    KUBERNETES,
    KUSTOMIZATION,
    SECRET_EXAMPLE,
    Manifest,
    kubectl,
    kustomization,
    kustomization_dirs,
    listed_paths,
    load_yaml,
    manifest_files,
    of_kind,
    overlay_dirs,
    render,
)

OLDEST_SUPPORTED = "1.29"  # docs/kubernetes.md "Requirements"
KUBERNETES_VERSIONS = [OLDEST_SUPPORTED, kubernetes_validate.latest_version()]


def validate(manifest: Manifest, version: str) -> None:
    """Fails on anything the API server would refuse, and on an unknown kind."""
    try:
        kubernetes_validate.validate(manifest, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = ".".join(str(part) for part in error.path)
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        pytest.fail(f"{name} against Kubernetes {version}: {where}: {error.message}")


def relative(path: Path) -> str:
    return str(path.relative_to(KUBERNETES))


def test_there_is_a_base_and_an_overlay() -> None:
    names = {relative(d) for d in kustomization_dirs()}
    assert {"base", "overlays/example"} <= names


@pytest.mark.parametrize("directory", kustomization_dirs(), ids=relative)
def test_every_file_a_kustomization_names_exists(directory: Path) -> None:
    kz = kustomization(directory)
    assert kz["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kz["kind"] == "Kustomization"
    for path in listed_paths(directory):
        assert path.is_file() or (path / KUSTOMIZATION).is_file(), f"{directory}: {path}"


def test_every_manifest_is_named_by_a_kustomization_but_the_secret_example() -> None:
    listed = {path for d in kustomization_dirs() for path in listed_paths(d)}
    unlisted = [relative(p) for p in manifest_files() if p not in listed]
    assert unlisted == [relative(SECRET_EXAMPLE)]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=relative)
def test_manifest_validates_strictly(path: Path, version: str) -> None:
    manifests = load_yaml(path)
    assert manifests, f"{path} holds no object"
    for manifest in manifests:
        validate(manifest, version)


def test_strict_validation_refuses_an_unknown_field() -> None:
    """The check above would catch a typo: kubernetes-validate's strict schemas forbid
    properties the API does not know."""
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "x"},
        "spec": {"ports": [{"port": 80}], "selectr": {"app": "x"}},
    }
    with pytest.raises(pytest.fail.Exception, match="'selectr' was unexpected"):
        validate(service, kubernetes_validate.latest_version())


def test_the_secret_is_an_example_with_placeholders_only() -> None:
    text = SECRET_EXAMPLE.read_text()
    assert "EXAMPLE" in text.splitlines()[0]
    (secret,) = load_yaml(SECRET_EXAMPLE)
    assert secret["kind"] == "Secret"
    assert "data" not in secret  # nothing base64-encoded that could hide a real value
    for key, value in secret["stringData"].items():
        assert "CHANGE-ME" in value, f"{key} must be a placeholder"


def test_no_other_secret_is_committed() -> None:
    for path in manifest_files():
        if path != SECRET_EXAMPLE:
            assert not of_kind(load_yaml(path), "Secret"), path
    for directory in kustomization_dirs():
        assert "secretGenerator" not in kustomization(directory), directory


@pytest.mark.subprocess
@pytest.mark.skipif(kubectl() is None, reason="kubectl is not installed")
@pytest.mark.parametrize("directory", overlay_dirs(), ids=relative)
def test_overlay_renders_and_every_object_validates(directory: Path) -> None:
    manifests = render(directory)
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    assert {"Job", "ConfigMap", "NetworkPolicy"} <= kinds
    namespaces = {m["metadata"].get("namespace") for m in manifests if m["kind"] != "Namespace"}
    assert len(namespaces) == 1 and None not in namespaces, namespaces
    for manifest in manifests:
        for version in KUBERNETES_VERSIONS:
            validate(manifest, version)
