#!/usr/bin/env bash
# The project's two entry points, usable on a fresh Debian/Ubuntu machine with Rust:
#   ./dev.sh test   run the whole test suite, every feature on (the PostgreSQL store's tests
#                   need PostgreSQL at 127.0.0.1:5432 with trust authentication and a
#                   database `test`, or ZAP_TEST_DATABASE; they fail, never skip, without it)
#   ./dev.sh demo   run the ironhouse demo (CURVE with trusted keys)
# Both install the system libzmq (libzmq3-dev, built with libsodium: CURVE works) when it is
# missing, and run cargo from this directory so .cargo/config.toml links that libzmq. `test` also
# installs the MIT Kerberos programs the GSSAPI tests run (each test makes its own realm).
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

# The GSSAPI tests' programs: krb5kdc and kdb5_util (krb5-kdc), kadmin.local (krb5-admin-server),
# kinit (krb5-user). The tests run their own KDC on loopback as a child process; no system
# service is used, so none may start: while apt runs, a policy-rc.d refuses every start (any
# policy-rc.d already there is put back afterwards), and under systemd the units the packages
# enable are disabled again. Debconf's questions (default realm, KDC hosts) get their defaults:
# the tests never read /etc/krb5.conf.
ensure_kerberos() {
  if [ -x /usr/sbin/krb5kdc ] && [ -x /usr/sbin/kdb5_util ] && [ -x /usr/sbin/kadmin.local ] &&
    [ -x /usr/bin/kinit ]; then
    return
  fi
  echo "dev.sh: installing krb5-kdc, krb5-admin-server, krb5-user (no service is started)" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  local policy=/usr/sbin/policy-rc.d saved=/usr/sbin/policy-rc.d.dev-sh-saved status=0
  # A saved one left by an interrupted run is the original: keep it, replace what is in place.
  if [ -e "$policy" ] && [ ! -e "$saved" ]; then $sudo mv "$policy" "$saved"; fi
  printf '#!/bin/sh\n# dev.sh: no service starts while the Kerberos packages install\nexit 101\n' |
    $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  {
    $sudo apt-get update -qq &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        krb5-kdc krb5-admin-server krb5-user >/dev/null
  } || status=$?
  $sudo rm -f "$policy"
  if [ -e "$saved" ]; then $sudo mv "$saved" "$policy"; fi
  [ "$status" -eq 0 ] || return "$status"
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --quiet krb5-kdc krb5-admin-server 2>/dev/null || true
  fi
  # A daemon is reparented to init; the tests' own KDCs are children of the test binary.
  if command -v pgrep >/dev/null && pgrep -P 1 -x 'krb5kdc|kadmind' >/dev/null; then
    echo "dev.sh: a system krb5kdc or kadmind is running; stop it (the tests use their own)" >&2
    return 1
  fi
}

case "${1:-}" in
  test)
    ensure_libzmq
    ensure_kerberos
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
