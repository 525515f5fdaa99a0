#!/usr/bin/env bash
# Provisions k8s: a single-node k0s cluster (controller + worker) whose API listens on 6443.
#
# Environment (set by the Vagrantfile from labs/vagrant.yaml):
#   K0S_VERSION  k0s release tag, e.g. v1.33.3+k0s.0 (required)
#   K0S_SHA256   pinned checksum of k0s-<tag>-amd64; empty = the release's published sha256sums.txt
#   NODE_IP      this machine's private IP: API address, certificate SAN and kubelet node IP
# Safe to re-run: the binary is fetched only when the version differs, k0s is installed only once.
# The admin kubeconfig is /var/lib/k0s/pki/admin.conf (root only, server https://localhost:6443).
set -euo pipefail

# This script's own hash, recorded in the marker: a changed script makes vm.up provision again.
SCRIPT_SHA256="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"

: "${K0S_VERSION:?K0S_VERSION is required}"
K0S_SHA256="${K0S_SHA256:-}"
NODE_IP="${NODE_IP:-192.168.56.20}"
K0S_BIN=/usr/local/bin/k0s
K0S_CONFIG=/etc/k0s/k0s.yaml
READY_TIMEOUT="${READY_TIMEOUT:-300}"

log() { echo "k8s: $*"; }

# Written last: what this provisioning left on the machine, for tunnel-lab's vm.up to compare with the lab
# file. A run that stopped half-way leaves none, so the next vm.up provisions the machine again.
write_marker() {
  install -d -m 0755 /etc/tunnel-lab
  printf '%s\n' "role=$1" "script=$SCRIPT_SHA256" "${@:2}" >/etc/tunnel-lab/provisioned.tmp
  mv -f /etc/tunnel-lab/provisioned.tmp /etc/tunnel-lab/provisioned
}

die() {
  echo "k8s: $*" >&2
  exit 1
}

[[ "$K0S_VERSION" == v* ]] || K0S_VERSION="v$K0S_VERSION"
[[ "$(uname -m)" == "x86_64" ]] || die "only x86_64 is supported, this is $(uname -m)"

if ! command -v curl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends curl ca-certificates
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

install_k0s_binary() {
  local asset="k0s-${K0S_VERSION}-amd64"
  # "+" in a URL path can be read as a space by some servers; the encoded form is always safe.
  local base_url="https://github.com/k0sproject/k0s/releases/download/${K0S_VERSION//+/%2B}"
  local curl_opts=(--fail --silent --show-error --location --proto '=https' --retry 5 --retry-delay 2)
  local expected actual
  expected="${K0S_SHA256,,}"
  if [[ -z "$expected" ]]; then
    curl "${curl_opts[@]}" -o "$workdir/sha256sums.txt" "$base_url/sha256sums.txt" ||
      die "no published checksums at $base_url/sha256sums.txt; pin vagrant.sha256.k0s instead"
    # sha256sum -b writes "<hash> *<name>".
    expected="$(awk -v name="$asset" '$2 == name || $2 == "*" name { print $1; exit }' "$workdir/sha256sums.txt")"
    [[ -n "$expected" ]] || die "sha256sums.txt of $K0S_VERSION has no entry for $asset"
  fi
  [[ "$expected" =~ ^[0-9a-f]{64}$ ]] || die "not a SHA256: $expected"

  log "downloading $base_url/${asset//+/%2B}"
  curl "${curl_opts[@]}" -o "$workdir/k0s" "$base_url/${asset//+/%2B}"
  actual="$(sha256sum "$workdir/k0s" | awk '{ print $1 }')"
  [[ "$actual" == "$expected" ]] || die "checksum mismatch for $asset: expected $expected, got $actual"
  install -m 0755 "$workdir/k0s" "$K0S_BIN"
}

installed_version=""
if [[ -x "$K0S_BIN" ]]; then
  installed_version="$("$K0S_BIN" version 2>/dev/null || true)"
fi
if [[ "$installed_version" != "$K0S_VERSION" ]]; then
  if [[ -n "$installed_version" && -e /etc/systemd/system/k0scontroller.service ]]; then
    # Swapping the binary under a running cluster is an upgrade, which this lab does not do.
    die "k0s $installed_version is installed and running; destroy the VM to change to $K0S_VERSION"
  fi
  install_k0s_binary
fi
log "k0s $("$K0S_BIN" version)"

install -d -m 0755 /etc/k0s
config_tmp="$workdir/k0s.yaml"
cat >"$config_tmp" <<EOF
apiVersion: k0s.k0sproject.io/v1beta1
kind: ClusterConfig
metadata:
  name: k0s
spec:
  api:
    address: ${NODE_IP}
    sans:
      - ${NODE_IP}
      - 127.0.0.1
      - localhost
EOF
if ! cmp -s "$config_tmp" "$K0S_CONFIG"; then
  install -m 0644 "$config_tmp" "$K0S_CONFIG"
  config_changed=1
else
  config_changed=0
fi

if [[ ! -e /etc/systemd/system/k0scontroller.service ]]; then
  log "installing the k0s controller (single node)"
  # Without --node-ip the kubelet would pick the NAT interface, which other VMs cannot reach.
  "$K0S_BIN" install controller --single --config "$K0S_CONFIG" \
    --kubelet-extra-args="--node-ip=${NODE_IP}"
elif [[ "$config_changed" == 1 ]]; then
  log "$K0S_CONFIG changed; restarting k0s"
  systemctl restart k0scontroller.service
fi

if ! systemctl is-active --quiet k0scontroller.service; then
  log "starting k0s"
  "$K0S_BIN" start
fi

log "waiting for the API server"
deadline=$((SECONDS + READY_TIMEOUT))
until "$K0S_BIN" kubectl get nodes -o name 2>/dev/null | grep -q .; do
  ((SECONDS < deadline)) || die "no node registered within ${READY_TIMEOUT}s"
  sleep 5
done

remaining=$((deadline - SECONDS))
((remaining > 0)) || remaining=1
"$K0S_BIN" kubectl wait --for=condition=Ready node --all --timeout="${remaining}s"
"$K0S_BIN" kubectl get nodes -o wide
log "node Ready; kubeconfig at /var/lib/k0s/pki/admin.conf"
write_marker kubernetes "k0s=$K0S_VERSION"
