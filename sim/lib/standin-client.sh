# shellcheck shell=bash
# Sourced by sim/bin/kubectl, istioctl and vagrant: hands the call to the lab's stand-in host
# (sim/standin-host.ts, which also documents the protocol) and exits with its answer. Returns instead when
# no host serves the call, and the launcher then runs the stand-in as a process of its own.

# standin_host_call TOOL ARGS...
standin_host_call() {
  local tool=$1
  shift
  [[ -n ${TUNNEL_LAB_SIM_STATE:-} ]] || return 0
  local address=$TUNNEL_LAB_SIM_STATE/standin-host/address
  [[ -r $address ]] || return 0
  local arg
  for arg in "$@"; do
    # The host gets no stdin: a call that reads it (`-f -`, `-f-`, `--filename=-`) runs as its own process.
    [[ $arg == - || $arg == *=- || $arg == -[!-]- ]] && return 0
  done
  local port token pid
  read -r port token pid <"$address" || return 0
  # No host listening (stopped, or gone with its lab): the stand-in runs as its own process.
  { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 0
  printf '%s\0' "$token" "$tool" "$PWD" "$#" "$@" >&3
  env -0 >&3
  printf '\0' >&3
  # Byte counts: read -N counts characters, which are bytes only in the C locale.
  local LC_ALL=C code errlen outlen stderr
  if ! IFS=' ' read -r code errlen outlen <&3; then
    printf "%s: the simulated lab's stand-in host (pid %s) ended the call without an answer\n" "$tool" "$pid" >&2
    exit 1
  fi
  if [[ $code == retry ]]; then
    exec 3<&-
    return 0
  fi
  if ((errlen > 0)); then
    IFS= read -r -d '' -N "$errlen" stderr <&3 || true
    printf '%s' "$stderr" >&2
  fi
  if ((outlen > 0)); then cat <&3; fi
  exit "$code"
}
