#!/usr/bin/env bash
# The project's two entry points, usable on a fresh Debian/Ubuntu machine with Rust:
#   ./dev.sh test   run the whole test suite, every feature on (the PostgreSQL store's tests
#                   need PostgreSQL at 127.0.0.1:5432 with trust authentication and a
#                   database `test`, or ZAP_TEST_DATABASE; they fail, never skip, without it)
#   ./dev.sh demo   run the ironhouse demo (CURVE with trusted keys)
# Both install the system libzmq (libzmq3-dev, built with libsodium: CURVE works) when it is
# missing, and run cargo from this directory so .cargo/config.toml links that libzmq.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

ensure_libzmq() {
  if [ -e /usr/include/zmq.h ] && ldconfig -p 2>/dev/null | grep -q 'libzmq\.so '; then
    return
  fi
  echo "dev.sh: installing libzmq3-dev (system libzmq with CURVE)" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libzmq3-dev pkg-config >/dev/null
}

case "${1:-}" in
  test)
    ensure_libzmq
    shift
    cargo test --all-features "$@"
    ;;
  demo)
    ensure_libzmq
    cargo run --example ironhouse
    ;;
  *)
    echo "usage: ./dev.sh test | demo" >&2
    exit 2
    ;;
esac
