#!/usr/bin/env bash
# Installs the real peers and checkers signet's tests run against (Debian/Ubuntu packages).
# Idempotent and quiet when everything is already there; otherwise runs apt-get as root (or
# through sudo), with a policy-rc.d that stops the packages' postinst from starting named, nsd,
# knot or unbound on port 53, and removes it afterwards.
set -euo pipefail

BINS="named nsd knotd kzonecheck ldns-verify-zone dnssec-verify delv dig nsupdate softhsm2-util unbound-host"
PACKAGES="bind9 bind9-utils bind9-dnsutils knot knot-dnsutils knot-dnssecutils nsd ldnsutils softhsm2 opensc unbound unbound-host"

# named, nsd and knotd live in sbin, which a non-root PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

missing=""
for b in $BINS; do
  command -v "$b" >/dev/null 2>&1 || missing="$missing $b"
done
[ -z "$missing" ] && exit 0

echo "install-test-deps: missing:$missing; installing $PACKAGES" >&2
if [ "$(id -u)" = 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-test-deps: not root and no sudo; install as root: apt-get install $PACKAGES" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: no apt-get; install the equivalents of: $PACKAGES" >&2
  exit 1
fi

POLICY=/usr/sbin/policy-rc.d
created_policy=0
cleanup() { [ "$created_policy" = 1 ] && "${SUDO[@]}" rm -f "$POLICY"; }
trap cleanup EXIT
if [ ! -e "$POLICY" ]; then
  # exit 101 = "action forbidden": invoke-rc.d starts no daemon during the install
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod +x "$POLICY"
  created_policy=1
fi

"${SUDO[@]}" apt-get update -qq
# shellcheck disable=SC2086
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null

still=""
for b in $BINS; do
  command -v "$b" >/dev/null 2>&1 || still="$still $b"
done
if [ -n "$still" ]; then
  echo "install-test-deps: still missing after install:$still" >&2
  exit 1
fi
echo "install-test-deps: done" >&2
