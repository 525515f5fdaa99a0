#!/usr/bin/env bash
# Provisions external-app: nginx serving HTTPS that requires a client certificate (mutual TLS), and
# plain HTTP on a port of its own (the plain-HTTP tunnel's destination).
#
# Certificates come from the synced folder CERTS_SRC (default /vagrant-certs), which the tunnel-lab
# certs.generate action fills on the host:
#   $CERTS_SRC/ca.crt             CA that signs the allowed client certificates
#   $CERTS_SRC/external-app.crt   server certificate (chain) of external-app
#   $CERTS_SRC/external-app.key   its private key
# Until they exist a temporary self-signed pair is made so that nginx can start; no client holds it,
# so every request gets 400 until certs.generate has run and this script runs again.
#
# Environment (set by the Vagrantfile from labs/vagrant.yaml):
#   APP_PORT       HTTPS port (default 443)
#   APP_HTTP_PORT  plain-HTTP port (default 80)
#   NODE_IP        this machine's private IP, put in the temporary certificate
#   CERTS_SRC      folder of the three files above
# Safe to re-run: certificates and config are replaced only when they differ, nginx reloads only then.
set -euo pipefail

# This script's own hash, recorded in the marker: a changed script makes vm.up provision again.
SCRIPT_SHA256="$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)"

APP_PORT="${APP_PORT:-443}"
APP_HTTP_PORT="${APP_HTTP_PORT:-80}"
NODE_IP="${NODE_IP:-192.168.56.30}"
CERTS_SRC="${CERTS_SRC:-/vagrant-certs}"
TLS_DIR=/etc/nginx/tls
SITE=/etc/nginx/conf.d/external-app.conf

log() { echo "external-app: $*"; }

# Written last: what this provisioning left on the machine, for tunnel-lab's vm.up to compare with the lab
# file. A run that stopped half-way leaves none, so the next vm.up provisions the machine again.
write_marker() {
  install -d -m 0755 /etc/tunnel-lab
  printf '%s\n' "role=$1" "script=$SCRIPT_SHA256" "${@:2}" >/etc/tunnel-lab/provisioned.tmp
  mv -f /etc/tunnel-lab/provisioned.tmp /etc/tunnel-lab/provisioned
}

if ! command -v nginx >/dev/null || ! command -v openssl >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends nginx openssl
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

changed=0
# Copies $1 to $2 with mode $3 when the content differs.
install_if_changed() {
  if ! cmp -s "$1" "$2"; then
    install -D -m "$3" "$1" "$2"
    changed=1
    log "installed $2"
  fi
}

install -d -m 0750 -o root -g www-data "$TLS_DIR"

if [[ -s "$CERTS_SRC/ca.crt" && -s "$CERTS_SRC/external-app.crt" && -s "$CERTS_SRC/external-app.key" ]]; then
  # A pair that does not match would make nginx refuse to start; catch it with a clear message.
  cert_pub="$(openssl x509 -in "$CERTS_SRC/external-app.crt" -noout -pubkey)"
  key_pub="$(openssl pkey -in "$CERTS_SRC/external-app.key" -pubout)"
  if [[ "$cert_pub" != "$key_pub" ]]; then
    echo "external-app: $CERTS_SRC/external-app.crt does not match external-app.key" >&2
    exit 1
  fi
  install_if_changed "$CERTS_SRC/ca.crt" "$TLS_DIR/ca.crt" 0644
  install_if_changed "$CERTS_SRC/external-app.crt" "$TLS_DIR/external-app.crt" 0644
  install_if_changed "$CERTS_SRC/external-app.key" "$TLS_DIR/external-app.key" 0640
  rm -f "$TLS_DIR/TEMPORARY"
  log "using the certificates from $CERTS_SRC"
elif [[ ! -s "$TLS_DIR/external-app.crt" || ! -s "$TLS_DIR/external-app.key" || ! -s "$TLS_DIR/ca.crt" ]]; then
  log "no certificates in $CERTS_SRC yet; generating a temporary self-signed pair"
  openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 30 \
    -subj "/CN=external-app" \
    -addext "subjectAltName=DNS:external-app,IP:${NODE_IP}" \
    -keyout "$workdir/external-app.key" -out "$workdir/external-app.crt" 2>/dev/null
  install_if_changed "$workdir/external-app.crt" "$TLS_DIR/external-app.crt" 0644
  install_if_changed "$workdir/external-app.key" "$TLS_DIR/external-app.key" 0640
  install_if_changed "$workdir/external-app.crt" "$TLS_DIR/ca.crt" 0644
  echo "self-signed placeholder; replaced when $CERTS_SRC holds ca.crt, external-app.crt, external-app.key" \
    >"$TLS_DIR/TEMPORARY"
else
  log "no certificates in $CERTS_SRC; keeping the ones installed in $TLS_DIR"
fi
chgrp www-data "$TLS_DIR/external-app.key"

cat >"$workdir/external-app.conf" <<EOF
# external-app of the tunnel lab: HTTPS with mutual TLS, and plain HTTP. Written by
# vagrant/provision/external-app.sh.
log_format mtls '\$remote_addr - [\$time_local] "\$request" \$status \$body_bytes_sent '
                'ssl_client_s_dn="\$ssl_client_s_dn" ssl_client_verify=\$ssl_client_verify '
                'sni="\$ssl_server_name" "\$http_user_agent"';

server {
    listen ${APP_PORT} ssl default_server;
    server_name external-app ${NODE_IP};

    ssl_certificate        ${TLS_DIR}/external-app.crt;
    ssl_certificate_key    ${TLS_DIR}/external-app.key;
    ssl_client_certificate ${TLS_DIR}/ca.crt;
    ssl_verify_client      on;
    ssl_verify_depth       2;
    ssl_protocols          TLSv1.2 TLSv1.3;

    access_log /var/log/nginx/access.log mtls;

    location / {
        default_type text/plain;
        return 200 "external-app: hello \$ssl_client_s_dn\n";
    }
}

# Plain HTTP: no client certificate, so a request proves only that it reached this machine.
server {
    listen ${APP_HTTP_PORT} default_server;
    server_name external-app ${NODE_IP};

    access_log /var/log/nginx/access.log mtls;

    location / {
        default_type text/plain;
        return 200 "external-app: hello over plain HTTP\n";
    }
}
EOF
install_if_changed "$workdir/external-app.conf" "$SITE" 0644

# The packaged default site also claims default_server on port 80 and serves a placeholder page.
if [[ -e /etc/nginx/sites-enabled/default ]]; then
  rm -f /etc/nginx/sites-enabled/default
  changed=1
fi

nginx -t -q
systemctl enable nginx.service >/dev/null 2>&1
if ! systemctl is-active --quiet nginx.service; then
  systemctl start nginx.service
elif [[ "$changed" == 1 ]]; then
  systemctl reload nginx.service
fi

if [[ -e "$TLS_DIR/TEMPORARY" ]]; then
  log "nginx serves :${APP_PORT} with a TEMPORARY certificate; run certs.generate, then provision again"
else
  log "nginx serves :${APP_PORT} with mutual TLS and :${APP_HTTP_PORT} in plain HTTP"
fi
write_marker app \
  "ca=$(sha256sum "$TLS_DIR/ca.crt" | cut -d' ' -f1)" \
  "cert=$(sha256sum "$TLS_DIR/external-app.crt" | cut -d' ' -f1)" \
  "temporary=$([[ -e "$TLS_DIR/TEMPORARY" ]] && echo yes || echo no)"
