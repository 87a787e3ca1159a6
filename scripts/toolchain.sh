#!/usr/bin/env bash
# Installs what building the workspace needs beyond Rust itself, from Debian's packages:
# protoc (the pulsar crate compiles Pulsar's protocol at build time), pkg-config and
# OpenSSL headers (TLS to the broker). Idempotent; quiet when everything is present.
set -euo pipefail

missing=()
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
command -v cc >/dev/null 2>&1 || missing+=(build-essential)

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "toolchain: missing ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "toolchain: installing ${missing[*]} from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    echo "toolchain: cargo is in $HOME/.cargo/bin but not on PATH; add it: export PATH=\$HOME/.cargo/bin:\$PATH" >&2
  else
    echo "toolchain: Rust is not installed; install it with rustup (https://rustup.rs)" >&2
  fi
  exit 1
fi
