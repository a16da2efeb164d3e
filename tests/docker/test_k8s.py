"""The Kubernetes manifests: each kustomization renders (kubectl's kustomize) into resources the
Kubernetes schemas accept, and the rendered containers' commands, arguments and environment run
as local processes: the seed Job, the server, the master Job and two indexed workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from local_fleet import (
    REPO,
    LocalMap,
    accepted_devices,
    kubernetes_expand,
    log_tail,
    run,
    start,
    stop,
    wait_healthy,
)

K8S = REPO / "docker" / "k8s"
KUSTOMIZATIONS = ["seed", "run", "overlays/million", "observability"]
SECRETS = {("mendersim-tokens", "mgmt-token"): "k8s-mgmt-secret"}
KUBERNETES_VERSION = "1.32.0"
# Fields of the locustio/k8s-operator CRD (locusttests.locust.cloud/v1,
# charts/locust-operator/crds/locusttest.yaml) that the example may use.
LOCUSTTEST_FIELDS = {
    "annotations", "labels", "image", "imagePullPolicy", "imagePullSecrets", "workers", "args",
    "env", "master", "worker", "locustfile", "metrics",
}  # fmt: skip


def render(kustomization: str) -> list[dict]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(resources: list[dict], kind: str, name: str) -> dict:
    return next(r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name)


def container_env(container: dict, resources: list[dict], extra: dict[str, str]) -> dict:
    """The environment Kubernetes gives the container, from ConfigMaps, Secrets and the
    Job controller's completion index (`extra`)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(find(resources, "ConfigMap", source["configMapRef"]["name"])["data"])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif ref := var["valueFrom"].get("secretKeyRef"):
            value = SECRETS.get((ref["name"], ref["key"]))
            assert value is not None or ref.get("optional"), f"{ref} is required"
            if value is not None:
                env[var["name"]] = value
        elif var["valueFrom"].get("fieldRef"):
            env[var["name"]] = extra[var["name"]]
    return env


def pod_container(resource: dict) -> dict:
    return resource["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_manifests_validate_against_the_kubernetes_schemas(
    kustomization: str, tmp_path: Path
) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(render(kustomization)))
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kubernetes-validate"), "--strict", "--quiet",
         "-k", KUBERNETES_VERSION, str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_workers_are_an_indexed_job_named_by_their_index() -> None:
    resources = render("run")
    workers = find(resources, "Job", "mendersim-workers")
    assert workers["spec"]["completionMode"] == "Indexed"
    assert workers["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    config = find(resources, "ConfigMap", "mendersim-run")["data"]
    assert int(config["LOCUST_EXPECT_WORKERS"]) == workers["spec"]["parallelism"]
    million = render("overlays/million")
    assert (
        int(find(million, "ConfigMap", "mendersim-run")["data"]["LOCUST_EXPECT_WORKERS"])
        == (find(million, "Job", "mendersim-workers")["spec"]["parallelism"])
    )


def test_grafana_mounts_the_folders_the_readme_makes_configmaps_of() -> None:
    grafana = find(render("observability"), "Deployment", "mendersim-grafana")
    mounts = {m["name"]: m["mountPath"] for m in pod_container(grafana)["volumeMounts"]}
    provider = yaml.safe_load((REPO / "reports/grafana/dashboards/mendersim.yaml").read_text())
    assert mounts["dashboards"] == provider["providers"][0]["options"]["path"]
    for name, path in mounts.items():
        assert path == f"/etc/grafana/provisioning/{name}"
        assert (
            f"--from-file=reports/grafana/{name}"
            in (K8S / "observability/kustomization.yaml").read_text()
        )
        assert (REPO / "reports" / "grafana" / name).is_dir()


def test_locusttest_example_uses_the_operators_fields_and_parses() -> None:
    test = yaml.safe_load((K8S / "locusttest.yaml").read_text())
    assert test["apiVersion"] == "locust.cloud/v1" and test["kind"] == "LocustTest"
    assert set(test["spec"]) <= LOCUSTTEST_FIELDS
    assert all(set(var) <= {"name", "value"} for var in test["spec"]["env"])
    local = LocalMap(Path("/nonexistent"), hosts=())
    args = local.argv(["locust", "-f", "/opt/mendersim/locustfiles/fleet.py", "--master",
                       *test["spec"]["args"].split(), "--list"])  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.integration
def test_manifests_commands_run_seed_server_master_and_indexed_workers(tmp_path: Path) -> None:
    resources = render("seed") + render("run")
    run_config = find(resources, "ConfigMap", "mendersim-run")["data"]
    # The run's knobs, shortened for the test: fewer users, seconds, a fast clock.
    run_config.update(
        LOCUST_USERS="6", LOCUST_SPAWN_RATE="6", LOCUST_RUN_TIME="6s",
        MENDERSIM_TIME_SCALE="0.0005",
    )  # fmt: skip
    data, config = tmp_path / "data", tmp_path / "config"
    data.mkdir()
    config.mkdir()
    for key, text in find(resources, "ConfigMap", "mendersim-fleet")["data"].items():
        (config / key).write_text(text)
    local = LocalMap(
        tmp_path, hosts=("mendersim-server", "mendersim-master"),
        dirs={"/data": data, "/config": config, "/tmp": tmp_path},
    )  # fmt: skip

    def command(resource: dict, extra: dict[str, str] | None = None) -> tuple[list, dict]:
        container = pod_container(resource)
        env = container_env(container, resources, extra or {})
        argv = [kubernetes_expand(a, env) for a in container["command"]]
        return local.argv(argv), env

    seed_argv, seed_env = command(find(resources, "Job", "mendersim-seed"))
    assert run(seed_argv, local.env(seed_env, "seed"), tmp_path / "seed.log") == 0
    processes = []
    try:
        server_argv, server_env = command(find(resources, "Deployment", "mendersim-server"))
        log = tmp_path / "server.log"
        processes.append(start(server_argv, local.env(server_env, "server"), log))
        wait_healthy(local.server_url, processes[0], log)
        master_argv, master_env = command(find(resources, "Job", "mendersim-master"))
        master_env["LOCUST_HOST"] = local.value(master_env["LOCUST_HOST"])
        master_log = tmp_path / "master.log"
        master = start(master_argv, local.env(master_env, "master"), master_log)
        processes.append(master)
        for index in ("0", "1"):
            argv, env = command(
                find(resources, "Job", "mendersim-workers"), {"JOB_COMPLETION_INDEX": index}
            )
            assert f"worker-{index}" in argv
            processes.append(start(argv, local.env(env, "worker"), tmp_path / f"w{index}.log"))
        assert master.wait(timeout=120) == 0, log_tail(master_log)
        for worker in processes[2:]:
            assert worker.wait(timeout=60) == 0
        assert accepted_devices(local.server_url, SECRETS[("mendersim-tokens", "mgmt-token")]) == 6
    finally:
        for process in reversed(processes):
            stop(process)
    reports = data / "reports"
    for name in ("report.html", "stats_stats.csv", "junit.xml", "summary.md"):
        assert (reports / name).stat().st_size > 0, name
    assert "PASSED" in (reports / "summary.md").read_text().upper()
