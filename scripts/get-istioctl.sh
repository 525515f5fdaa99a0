#!/usr/bin/env bash
# Installs the istioctl release a lab pins (labs/vagrant.yaml istio.version), checksum-verified.
#
# Usage: get-istioctl.sh [VERSION [SHA256]]
#   VERSION  Istio release (default: $ISTIO_VERSION)
#   SHA256   expected checksum of istioctl-VERSION-linux-ARCH.tar.gz (default: $ISTIO_SHA256); when empty
#            the checksum is taken from the release's published .sha256 file
#   ISTIOCTL_BIN  where to install (default: .tools/bin/istioctl in this checkout)
# Re-running is safe: nothing is downloaded when ISTIOCTL_BIN already is that version.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="${1:-${ISTIO_VERSION:-}}"
expected_sha256="${2:-${ISTIO_SHA256:-}}"
target="${ISTIOCTL_BIN:-$root/.tools/bin/istioctl}"

die() {
  echo "get-istioctl: $*" >&2
  exit 1
}

[[ -n "$version" ]] || die "no version given (argument 1 or ISTIO_VERSION), e.g. 1.28.3"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "not an Istio release version: $version"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform=linux-amd64 ;;
  Linux-aarch64) platform=linux-arm64 ;;
  Darwin-x86_64) platform=osx-amd64 ;;
  Darwin-arm64) platform=osx-arm64 ;;
  *) die "no istioctl release for $(uname -s) $(uname -m)" ;;
esac

if [[ -x "$target" ]] && "$target" version --remote=false 2>/dev/null | grep -qx "client version: $version"; then
  echo "get-istioctl: $target is already istioctl $version"
  exit 0
fi

asset="istioctl-${version}-${platform}.tar.gz"
base_url="https://github.com/istio/istio/releases/download/${version}"
curl_opts=(--fail --silent --show-error --location --proto '=https' --retry 5 --retry-delay 2)

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

if [[ -z "$expected_sha256" ]]; then
  curl "${curl_opts[@]}" -o "$workdir/asset.sha256" "$base_url/$asset.sha256" ||
    die "no published checksum at $base_url/$asset.sha256; pin ISTIO_SHA256 instead"
  expected_sha256="$(awk '{ print $1; exit }' "$workdir/asset.sha256")"
fi
expected_sha256="${expected_sha256,,}"
[[ "$expected_sha256" =~ ^[0-9a-f]{64}$ ]] || die "not a SHA256: $expected_sha256"

echo "get-istioctl: downloading $base_url/$asset"
curl "${curl_opts[@]}" -o "$workdir/$asset" "$base_url/$asset"
actual_sha256="$(sha256sum "$workdir/$asset" | awk '{ print $1 }')"
[[ "$actual_sha256" == "$expected_sha256" ]] ||
  die "checksum mismatch for $asset: expected $expected_sha256, got $actual_sha256"

tar -xzf "$workdir/$asset" -C "$workdir" istioctl
install -D -m 0755 "$workdir/istioctl" "$target"
"$target" version --remote=false
