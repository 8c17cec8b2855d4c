#!/usr/bin/env python3
"""Checks kubesim with the official Kubernetes Python client.

Usage: test_client.py KUBECONFIG
Prints one line per check and `N passed, N failed` at the end; exits non-zero on failure.
"""
import sys
import time
import traceback
import uuid

from kubernetes import client, config, watch

RESULTS = {"passed": 0, "failed": 0}


def check(name):
    def wrap(fn):
        def run(*args):
            try:
                fn(*args)
                RESULTS["passed"] += 1
                print(f"ok   {name}")
            except Exception:  # noqa: BLE001 - report every failure and go on
                RESULTS["failed"] += 1
                print(f"FAIL {name}")
                traceback.print_exc()
        return run
    return wrap


def deployment(name, image="nginx:1.25", replicas=1):
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="main", image=image)]),
            ),
        ),
    )


@check("list nodes")
def list_nodes(core):
    nodes = core.list_node().items
    assert len(nodes) >= 1, "no nodes"
    for n in nodes:
        assert n.status.node_info.kubelet_version, "node without kubelet version"


@check("create a deployment and read it back")
def create_deployment(apps, ns, name):
    created = apps.create_namespaced_deployment(ns, deployment(name, replicas=2))
    assert created.metadata.uid, "no uid"
    read = apps.read_namespaced_deployment(name, ns)
    assert read.metadata.uid == created.metadata.uid
    assert read.spec.replicas == 2


@check("deployment becomes available")
def deployment_ready(apps, ns, name):
    deadline = time.time() + 30
    while time.time() < deadline:
        d = apps.read_namespaced_deployment_status(name, ns)
        # A new deployment may have no status yet, as on a real cluster.
        if d.status and (d.status.ready_replicas or 0) == 2:
            return
        time.sleep(0.1)
    raise AssertionError("deployment did not become ready")


@check("list pods and deserialize them")
def list_pods(core, ns, name):
    pods = core.list_namespaced_pod(ns, label_selector=f"app={name}").items
    assert len(pods) == 2, f"expected 2 pods, got {len(pods)}"
    for p in pods:
        assert p.spec.node_name, "pod not scheduled"
        assert p.status.phase == "Running", p.status.phase
        assert p.status.container_statuses[0].ready is True


@check("watch sees events")
def watch_events(core, apps, ns, name):
    w = watch.Watch()
    seen = []
    apps.patch_namespaced_deployment_scale(name, ns, {"spec": {"replicas": 3}})
    for event in w.stream(core.list_namespaced_pod, ns, label_selector=f"app={name}", timeout_seconds=10):
        seen.append(event["type"])
        if len(seen) >= 4:
            w.stop()
    assert len(seen) >= 3, f"only saw {seen}"
    assert "ADDED" in seen


@check("not found is an ApiException with status 404")
def not_found(core, ns):
    try:
        core.read_namespaced_pod("no-such-pod", ns)
    except client.exceptions.ApiException as e:
        assert e.status == 404, e.status
        return
    raise AssertionError("expected a 404")


@check("delete the namespace")
def delete_namespace(core, ns):
    core.delete_namespace(ns)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            core.read_namespace(ns)
        except client.exceptions.ApiException as e:
            if e.status == 404:
                return
        time.sleep(0.1)
    raise AssertionError("namespace still there")


def main():
    if len(sys.argv) != 2:
        print("usage: test_client.py KUBECONFIG", file=sys.stderr)
        return 2
    config.load_kube_config(config_file=sys.argv[1])
    core = client.CoreV1Api()
    apps = client.AppsV1Api()
    ns = f"py-{uuid.uuid4().hex[:8]}"
    name = "pyweb"
    list_nodes(core)
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        RESULTS["failed"] += 1
    create_deployment(apps, ns, name)
    deployment_ready(apps, ns, name)
    list_pods(core, ns, name)
    watch_events(core, apps, ns, name)
    not_found(core, ns)
    delete_namespace(core, ns)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    return 1 if RESULTS["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
