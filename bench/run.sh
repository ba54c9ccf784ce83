#!/usr/bin/env bash
# Times `signet sign-zone` beside the anchor signers (Knot kzonesign, BIND dnssec-signzone,
# ldns-signzone) in ONE run of the shared driver run_anchors.sh, then prints the summary table.
# See bench/README.md. Every run_anchors.sh variable (SIZES, MODES, REPS, TIMEOUT, THREADS, WORK,
# ZONEDIR, VERIFY_SIZES, VERIFY_BIND, KEEP_OUTPUT, SKIP_IF, ORIGIN) passes through.
#
# Extra environment:
#   SIGNET_SHARED_BENCH  [<repo>/../shared/bench]   where run_anchors.sh and summarize.py live
#   SIGNET_BIN           [<repo>/target/release/signet]
#   SKIP_BUILD           [0]      1 = don't run `cargo build --release` first
#   TOOLS                ["knot bind ldns custom"]  ("custom" is signet)
set -euo pipefail

TOP=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
SHARED_BENCH=${SIGNET_SHARED_BENCH:-$TOP/../shared/bench}
if [ ! -f "$SHARED_BENCH/run_anchors.sh" ]; then
  echo "bench/run.sh: no run_anchors.sh in $SHARED_BENCH (set SIGNET_SHARED_BENCH)" >&2
  exit 1
fi
SHARED_BENCH=$(cd "$SHARED_BENCH" && pwd)

if [ "${SKIP_BUILD:-0}" != 1 ]; then
  (cd "$TOP" && cargo build --release)
fi
SIGNET_BIN=${SIGNET_BIN:-$TOP/target/release/signet}
[ -x "$SIGNET_BIN" ] || { echo "bench/run.sh: $SIGNET_BIN is not executable" >&2; exit 1; }

export SIZES=${SIZES:-"100000 1000000"}
export TOOLS=${TOOLS:-"knot bind ldns custom"}
export WORK=${WORK:-${TMPDIR:-/tmp}/signet-bench/run}
export CUSTOM_NAME=signet
export SIGNET_BIN

# Untimed, once per mode (run_anchors.sh exports KEYDIR, MODE, ORIGIN): the signet configuration
# of SPEC.md in $KEYDIR/signet.toml -- soft keys in $KEYDIR/keys, KSK + ZSK ECDSAP256SHA256, NSEC3
# with RFC 9276 parameters in nsec3 mode -- then one signing of a tiny zone, so the keys exist
# before the timed runs (sign-zone creates keys if none exist).
# The zone's `file` is a symlink that each timed run points at its input; --in is what is read.
export CUSTOM_SETUP='
set -e
mkdir -p "$KEYDIR/keys" "$KEYDIR/state"
nsec3=""
[ "$MODE" = nsec3 ] && nsec3="nsec3 = { iterations = 0, salt-length = 0, opt-out = false }"
cat > "$KEYDIR/signet.toml" <<TOML
[server]
state-dir = "$KEYDIR/state"

[keystore.files]
backend = "files"
directory = "$KEYDIR/keys"

[policy.bench]
keys = [
    { role = "ksk", algorithm = "ecdsap256sha256", lifetime = "unlimited", keystore = "files" },
    { role = "zsk", algorithm = "ecdsap256sha256", lifetime = "unlimited", keystore = "files" },
]
$nsec3

[[zone]]
name = "$ORIGIN"
policy = "bench"
file = "$KEYDIR/unsigned.zone"
TOML
printf "\$ORIGIN %s.\n\$TTL 3600\n@ SOA ns1 hostmaster 1 3600 600 864000 300\n@ NS ns1\nns1 A 192.0.2.1\n" \
  "$ORIGIN" > "$KEYDIR/setup.zone"
ln -sfn "$KEYDIR/setup.zone" "$KEYDIR/unsigned.zone"
"$SIGNET_BIN" sign-zone -c "$KEYDIR/signet.toml" --zone "$ORIGIN" \
  --in "$KEYDIR/setup.zone" --out "$KEYDIR/setup.signed" > "$KEYDIR/setup.log" 2>&1 \
  && test -s "$KEYDIR/setup.signed" \
  || { echo "signet setup failed, see $KEYDIR/setup.log" >&2; cat "$KEYDIR/setup.log" >&2; exit 1; }
'
# Timed (run_anchors.sh exports IN, OUT, MODE, KEYDIR, ORIGIN, THREADS).
export CUSTOM_CMD='ln -sfn "$IN" "$KEYDIR/unsigned.zone" && "$SIGNET_BIN" sign-zone -c "$KEYDIR/signet.toml" --zone "$ORIGIN" --in "$IN" --out "$OUT" && test -s "$OUT"'

# run_anchors.sh marks the setup done even when it failed (e.g. before sign-zone existed): redo it.
for d in "$WORK/$CUSTOM_NAME"/*/; do
  [ -f "$d.setup-done" ] && [ ! -s "${d}setup.signed" ] && rm -f "$d.setup-done"
done

bash "$SHARED_BENCH/run_anchors.sh"

summary=$WORK/summary.md
python3 "$SHARED_BENCH/summarize.py" "$WORK/results.csv" "$WORK/verify.csv" | tee "$summary"
echo "bench/run.sh: results in $WORK/results.csv, table in $summary" >&2
