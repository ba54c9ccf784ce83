#!/usr/bin/env bash
# Issue 4's benchmark: a one-record change upstream, from the NOTIFY that reaches signet to the
# NOTIFY that signet sends its secondaries, and the size of the IXFR that follows.
#
#   knotd (upstream, zonefile-load: difference) --NOTIFY/IXFR--> signet serve --NOTIFY--> listener
#
# The listener is a few lines of Python that timestamp each NOTIFY and answer it. Both ends are
# read from logs with the same clock (UTC, microseconds): t0 = signet's "NOTIFY received" line,
# t1 = the listener's receive time. knotd's own time to compute its diff is outside the measure.
#
# Environment:
#   SIGNET_BIN  [<repo>/target/release/signet]     ROUNDS [5]     N [100000]
#   ZONEDIR     [/tmp/signet-bench/zones]          WORK   [/tmp/signet-bench/incremental]
#   MODE        [nsec]  (or nsec3)                 KEEP   [0]  1 = leave $WORK and the daemons' logs
set -euo pipefail

TOP=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SIGNET_BIN=${SIGNET_BIN:-$TOP/target/release/signet}
N=${N:-100000}
ROUNDS=${ROUNDS:-5}
MODE=${MODE:-nsec}
ZONEDIR=${ZONEDIR:-/tmp/signet-bench/zones}
WORK=${WORK:-/tmp/signet-bench/incremental}
ORIGIN=example.com
GENZONE=${GENZONE:-$TOP/../shared/bench/genzone.py}

for b in knotd knotc dig python3; do
  command -v "$b" >/dev/null || { echo "incremental.sh: $b is missing" >&2; exit 1; }
done
[ -x "$SIGNET_BIN" ] || { echo "incremental.sh: $SIGNET_BIN is not executable" >&2; exit 1; }

mkdir -p "$ZONEDIR"
SRC="$ZONEDIR/$ORIGIN.$N.zone"
[ -s "$SRC" ] || python3 "$GENZONE" "$ORIGIN" "$N" > "$SRC"

rm -rf "$WORK"
mkdir -p "$WORK"/{knot/zones,knot/db,signet/state,signet/keys}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KPORT=$(free_port); SPORT=$(free_port); LPORT=$(free_port)

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 130" INT TERM

# the upstream zone: the generated one, serial 1
cp "$SRC" "$WORK/knot/zones/$ORIGIN.zone"
cat > "$WORK/knot/knot.conf" <<EOF
server:
    rundir: "$WORK/knot"
    listen: 127.0.0.1@$KPORT
log:
  - target: stderr
    any: info
database:
    storage: "$WORK/knot/db"
control:
    listen: "$WORK/knot/knot.sock"
remote:
  - id: signet
    address: 127.0.0.1@$SPORT
acl:
  - id: xfr
    address: 127.0.0.0/8
    action: transfer
template:
  - id: default
    storage: "$WORK/knot/zones"
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    journal-max-usage: 2G
zone:
  - domain: $ORIGIN
    file: $ORIGIN.zone
    notify: [signet]
    acl: xfr
EOF
knotd -c "$WORK/knot/knot.conf" > "$WORK/knot/log" 2>&1 &
PIDS+=($!)

# the secondary stand-in: timestamps every NOTIFY and answers it (same id, QR + AA)
cat > "$WORK/listener.py" <<'EOF'
import socket, sys, datetime
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(4096)
    t = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    print(t, "NOTIFY", len(data), flush=True)
    if len(data) >= 12:
        s.sendto(data[:2] + bytes([data[2] | 0x84, 0]) + data[4:], addr)
EOF
python3 "$WORK/listener.py" "$LPORT" > "$WORK/listener.log" 2>&1 &
PIDS+=($!)

nsec3=""
[ "$MODE" = nsec3 ] && nsec3="nsec3 = { iterations = 0, salt-length = 0, opt-out = false }"
cat > "$WORK/signet/signet.toml" <<EOF
[server]
listen = ["127.0.0.1:$SPORT"]
state-dir = "$WORK/signet/state"

[keystore.files]
backend = "files"
directory = "$WORK/signet/keys"

[policy.bench]
keys = [
    { role = "ksk", algorithm = "ecdsap256sha256", lifetime = "unlimited", keystore = "files" },
    { role = "zsk", algorithm = "ecdsap256sha256", lifetime = "unlimited", keystore = "files" },
]
$nsec3

[[zone]]
name = "$ORIGIN"
policy = "bench"
primaries = ["127.0.0.1:$KPORT"]
notify = ["127.0.0.1:$LPORT"]
allow-transfer = ["127.0.0.1"]
EOF
for i in $(seq 100); do knotc -c "$WORK/knot/knot.conf" zone-status "$ORIGIN" >/dev/null 2>&1 && break; sleep 0.2; done
SIGNET_LOG=${SIGNET_LOG:-info,signet::zone::service=debug} "$SIGNET_BIN" serve -c "$WORK/signet/signet.toml" > "$WORK/signet/log" 2>&1 &
SIGNET_PID=$!
PIDS+=($SIGNET_PID)

soa() { dig +short +time=2 +tries=1 -p "$1" @127.0.0.1 "$ORIGIN" SOA | awk '{print $3}'; }
wait_for() { # $1 = timeout s, $2... = command that must succeed
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -lt $end ] || return 1; sleep 0.2; done
}
served() { test -n "$(soa "$SPORT")"; }
wait_for 900 served || { echo "signet never served the zone; see $WORK/signet/log" >&2; tail "$WORK/signet/log" >&2; exit 1; }
first_notify() { test -s "$WORK/listener.log"; }
wait_for 120 first_notify || { echo "signet sent no NOTIFY for its first version" >&2; exit 1; }
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$SIGNET_PID/status)
echo "# incremental.sh: N=$N MODE=$MODE, signet serving serial $(soa "$SPORT"), RSS $((rss_kb / 1024)) MiB"
echo "| round | upstream serial | signed serial | NOTIFY in -> NOTIFY out (ms) | IXFR records | signet log lines of the round |"
echo "|---:|---:|---:|---:|---:|---|"

zone="$WORK/knot/zones/$ORIGIN.zone"
BASE_SERIAL=$(dig +short -p "$KPORT" @127.0.0.1 "$ORIGIN" SOA | awk '{print $3}')
for r in $(seq "$ROUNDS"); do
  before=$(soa "$SPORT")
  lines_before=$(wc -l < "$WORK/signet/log")
  notifies_before=$(wc -l < "$WORK/listener.log")
  # one change: a new host (one A record) and the SOA serial
  userial=$((BASE_SERIAL + r))
  python3 - "$zone" "$userial" "$r" <<'EOF'
import re, sys
path, serial, r = sys.argv[1], sys.argv[2], sys.argv[3]
text = open(path).read()
# the SOA is the first record whose type is SOA: replace its serial (the first number after the
# two names), wherever the generator put it
text = re.sub(r"(\sSOA\s+\S+\s+\S+\s+\(?\s*)(\d+)", lambda m: m.group(1) + serial, text, count=1)
text += f"bench-change-{r} 3600 IN A 198.51.100.{int(r) % 250 + 1}\n"
open(path, "w").write(text)
EOF
  # knotc may time out on a big zone while knotd goes on computing the difference
  knotc -c "$WORK/knot/knot.conf" zone-reload "$ORIGIN" >/dev/null 2>&1 || true
  notified() { test "$(wc -l < "$WORK/listener.log")" -gt "$notifies_before"; }
  wait_for 600 notified \
    || { echo "no NOTIFY out in round $r; see $WORK/signet/log" >&2; exit 1; }
  after=$(soa "$SPORT")
  t0=$(tail -n +"$((lines_before + 1))" "$WORK/signet/log" | grep -m1 'NOTIFY received' | awk '{print $1}')
  t1=$(tail -n +"$((notifies_before + 1))" "$WORK/listener.log" | head -1 | awk '{print $1}')
  ms=$(python3 - "$t0" "$t1" <<'EOF'
import sys, datetime
def p(s):
    s = s.rstrip("Z")
    if "." in s:
        a, b = s.split(".")
        s = a + "." + (b + "000000")[:6]
    return datetime.datetime.fromisoformat(s)
print(round((p(sys.argv[2]) - p(sys.argv[1])).total_seconds() * 1000, 1))
EOF
)
  ixfr=$(dig +tcp -p "$SPORT" @127.0.0.1 "$ORIGIN" IXFR="$before" | grep -v '^;' | grep -c . || true)
  steps=$(tail -n +"$((lines_before + 1))" "$WORK/signet/log" | sed -e 's/\x1b\[[0-9;]*m//g' | grep -o 'phase=[a-z_]* ms=[0-9.]*' | tr '\n' ' ' || true)
  echo "| $r | $userial | $after | $ms | $ixfr | $steps |"
done
rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$SIGNET_PID/status)
echo "# signet RSS after the rounds: $((rss_kb / 1024)) MiB"
