#!/usr/bin/env bash
# Installs the official Envoy release binary, checksum-verified.
#
# Usage: get-envoy.sh [VERSION [SHA256]]
#   VERSION  Envoy release without the "v" (default: $ENVOY_VERSION)
#   SHA256   expected checksum of envoy-VERSION-linux-x86_64 (default: $ENVOY_SHA256); when empty the
#            checksum is taken from the release's published checksums.txt.asc
#   ENVOY_BIN  where to install (default /usr/local/bin/envoy)
# Re-running is safe: nothing is downloaded when ENVOY_BIN already is that version.
set -euo pipefail

version="${1:-${ENVOY_VERSION:-}}"
expected_sha256="${2:-${ENVOY_SHA256:-}}"
target="${ENVOY_BIN:-/usr/local/bin/envoy}"

die() {
  echo "get-envoy: $*" >&2
  exit 1
}

[[ -n "$version" ]] || die "no version given (argument 1 or ENVOY_VERSION), e.g. 1.36.4"
version="${version#v}"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "not an Envoy release version: $version"
[[ "$(uname -m)" == "x86_64" ]] || die "only x86_64 is supported, this is $(uname -m)"

if [[ -x "$target" ]] && "$target" --version 2>/dev/null | grep -q "/${version}/"; then
  echo "get-envoy: $target is already Envoy $version"
  exit 0
fi

asset="envoy-${version}-linux-x86_64"
base_url="https://github.com/envoyproxy/envoy/releases/download/v${version}"
curl_opts=(--fail --silent --show-error --location --proto '=https' --retry 5 --retry-delay 2)

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

if [[ -z "$expected_sha256" ]]; then
  # The file is clear-signed; its signature is not checked here, so a pinned SHA256 is the stronger check.
  curl "${curl_opts[@]}" -o "$workdir/checksums.txt.asc" "$base_url/checksums.txt.asc" ||
    die "no published checksums at $base_url/checksums.txt.asc; pin ENVOY_SHA256 instead"
  expected_sha256="$(awk -v name="$asset" '$2 == name || $2 == "*" name { print $1; exit }' "$workdir/checksums.txt.asc")"
  [[ -n "$expected_sha256" ]] || die "checksums.txt.asc of v$version has no entry for $asset"
fi
expected_sha256="${expected_sha256,,}"
[[ "$expected_sha256" =~ ^[0-9a-f]{64}$ ]] || die "not a SHA256: $expected_sha256"

echo "get-envoy: downloading $base_url/$asset"
curl "${curl_opts[@]}" -o "$workdir/envoy" "$base_url/$asset"

actual_sha256="$(sha256sum "$workdir/envoy" | awk '{ print $1 }')"
[[ "$actual_sha256" == "$expected_sha256" ]] ||
  die "checksum mismatch for $asset: expected $expected_sha256, got $actual_sha256"

install -D -m 0755 "$workdir/envoy" "$target"
"$target" --version
