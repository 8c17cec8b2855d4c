#!/usr/bin/env bash
# Runs kubectl and the official Python client against a freshly started kubesim.
# Installs what is missing, builds the simulator (honouring CARGO_TARGET_DIR), and exits
# non-zero if any check fails. Works from any directory.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate="$(cd "$here/.." && pwd)"
root="$(cd "$crate/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in /*) ;; *) target="$root/$target" ;; esac

if ! python3 -c 'import kubernetes' 2>/dev/null; then
    echo "installing the kubernetes Python client"
    python3 -m pip install --quiet kubernetes
fi
if ! command -v kubectl >/dev/null 2>&1; then
    echo "installing kubectl"
    apt-get update -qq && apt-get install -y -qq kubectl
fi

(cd "$root" && cargo build --quiet -p kubesim --bin kubesim)

work="$(mktemp -d)"
"$target/debug/kubesim" --kubeconfig "$work/kubeconfig" --ready-ms 100 >"$work/sim.out" 2>"$work/sim.err" &
sim=$!
cleanup() {
    kill "$sim" 2>/dev/null || true
    wait "$sim" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 300); do
    grep -q '^kubeconfig:' "$work/sim.out" 2>/dev/null && break
    kill -0 "$sim" 2>/dev/null || { cat "$work/sim.err"; echo "kubesim did not start"; exit 1; }
    sleep 0.1
done
export KUBECONFIG="$work/kubeconfig"
ns="clients-$$"

passed=0
failed=0
check() {
    local name="$1"
    shift
    if "$@" >"$work/check.log" 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        sed 's/^/    /' "$work/check.log"
        failed=$((failed + 1))
    fi
}

nodes_listed() {
    local out
    out="$(kubectl get nodes)"
    printf '%s\n' "$out" >&2
    grep -q 'gpu-node-1 *Ready' <<<"$out"
}

apply_from_yaml() {
    cat >"$work/app.yaml" <<YAML
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: $ns
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: ${1:-nginx:1.25}
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: $ns
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
YAML
    kubectl apply -f "$work/app.yaml"
}

wait_ready() {
    local want="$1" got=""
    for _ in $(seq 1 300); do
        got="$(kubectl get deploy "$2" -n "$ns" -o jsonpath='{.status.readyReplicas}')"
        [ "$got" = "$want" ] && return 0
        sleep 0.1
    done
    echo "readyReplicas of $2 is '$got', wanted $want"
    return 1
}

watch_sees_an_event() {
    timeout 30 kubectl get pods -n "$ns" -w --watch-only >"$work/watch.out" 2>&1 &
    local watcher=$! replicas=1
    # Keep changing the pods until the watch shows one (kubectl may start slowly).
    for _ in $(seq 1 40); do
        sleep 0.5
        grep -q 'api-' "$work/watch.out" && break
        kubectl scale deployment/api -n "$ns" --replicas="$replicas" >/dev/null
        replicas=$((3 - replicas))
    done
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
    cat "$work/watch.out"
    grep -q 'api-' "$work/watch.out"
}

namespace_deleted() {
    kubectl delete namespace "$ns" --timeout=60s
    ! kubectl get namespace "$ns" 2>/dev/null
}

check "kubectl get nodes" nodes_listed
check "kubectl apply -f (namespace, deployment, service)" apply_from_yaml
check "kubectl rollout status" kubectl rollout status deployment/web -n "$ns" --timeout=60s
check "kubectl get pods, services" kubectl get pods,services -n "$ns"
check "kubectl create deployment" kubectl create deployment api --image=nginx:1.25 -n "$ns"
check "kubectl rollout status (created)" kubectl rollout status deployment/api -n "$ns" --timeout=60s
check "kubectl scale" kubectl scale deployment/api -n "$ns" --replicas=3
check "scaled deployment becomes ready" wait_ready 3 api
check "kubectl logs" kubectl logs deployment/api -n "$ns"
check "kubectl get -w sees an event" watch_sees_an_event
check "kubectl apply a new image" apply_from_yaml nginx:1.26
check "kubectl rollout status (new image)" kubectl rollout status deployment/web -n "$ns" --timeout=60s
check "kubectl create namespace" kubectl create namespace "$ns-extra"
check "kubectl delete namespace" namespace_deleted

echo "python client:"
if python3 "$crate/tests/python/test_client.py" "$KUBECONFIG"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
