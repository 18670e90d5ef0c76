#!/usr/bin/env bash
# Peer comparison: huashu's engine vs SQLite FTS5 + jieba vs bm25s + jieba, on the
# same generated phrasebooks and buyer messages, in one run, as one table.
#
#   benches/peers/run.sh [--sizes 1000,10000] [--seed 7] [--json] [--out FILE] [--keep]
#                        [--warmup N] [--min-queries N] [--max-queries N] [--time-budget S]
#                        [--engines sqlite-fts5+jieba,bm25s+jieba[,jieba-only]]
#
# HUASHU_BIN (default target/release/huashu) must support `gen` and `bench --engine`;
# it is built with `cargo build --release` only if the default binary is missing.
# PYTHON (default python3, >= 3.11) makes benches/peers/.venv. See README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENV="$HERE/.venv"
PYTHON=${PYTHON:-python3}

sizes=1000,10000
seed=7
json=0
out=
keep=0
peer_args=()

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "run.sh: $*" >&2; exit 2; }
log() { echo "run.sh: $*" >&2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) [ $# -ge 2 ] || die "--sizes needs a value"; sizes=$2; shift 2 ;;
    --seed) [ $# -ge 2 ] || die "--seed needs a value"; seed=$2; shift 2 ;;
    --json) json=1; shift ;;
    --out) [ $# -ge 2 ] || die "--out needs a value"; out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --warmup|--min-queries|--max-queries|--time-budget|--engines)
      [ $# -ge 2 ] || die "$1 needs a value"; peer_args+=("$1" "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

IFS=, read -r -a size_list <<<"$sizes"
[ ${#size_list[@]} -gt 0 ] || die "--sizes is empty"
for n in "${size_list[@]}"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "bad size '$n' in --sizes (want e.g. 1000,10000)"
done
[[ $seed =~ ^[0-9]+$ ]] || die "bad --seed '$seed'"

# --- huashu binary -----------------------------------------------------------------
if [ -z "${HUASHU_BIN:-}" ]; then
  HUASHU_BIN="$ROOT/target/release/huashu"
  if [ ! -x "$HUASHU_BIN" ]; then
    log "building $HUASHU_BIN (cargo build --release)"
    (cd "$ROOT" && cargo build --release >&2)
  fi
fi
[ -x "$HUASHU_BIN" ] || die "HUASHU_BIN=$HUASHU_BIN is not an executable"
for sub in gen "bench --engine"; do
  # shellcheck disable=SC2086
  "$HUASHU_BIN" $sub --help >/dev/null 2>&1 ||
    die "$HUASHU_BIN has no '$sub' command (stale binary? rebuild with: cargo build --release)"
done

# --- python venv ---------------------------------------------------------------------
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null ||
  die "$PYTHON must be Python >= 3.11 (tomllib); set PYTHON=..."
req_sum=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.requirements.sha256" 2>/dev/null)" != "$req_sum" ]; then
  log "setting up $VENV"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$HERE/requirements.txt" >&2
  echo "$req_sum" >"$VENV/.requirements.sha256"
fi
PY="$VENV/bin/python"

huashu_version=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

# --- runs ----------------------------------------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/huashu-peers.XXXXXX")
if [ "$keep" = 1 ]; then
  log "keeping $TMP"
else
  trap 'rm -rf "$TMP"' EXIT
fi

results=()
for n in "${size_list[@]}"; do
  pb="$TMP/pb-$n"
  log "size $n: generating phrasebook (seed $seed)"
  "$HUASHU_BIN" gen --out "$pb" --shops 1 --phrases "$n" --seed "$seed" >&2
  shop=s000
  [ -d "$pb/$shop" ] || die "gen wrote no $pb/$shop"
  [ -s "$pb/messages.txt" ] || die "gen wrote no $pb/messages.txt"

  log "size $n: huashu bench --engine"
  timeout 900 "$HUASHU_BIN" bench --engine --phrasebook "$pb" --index "$TMP/index-$n" \
    --shop "$shop" --messages "$pb/messages.txt" --json >"$TMP/huashu-$n.json" ||
    die "huashu bench failed for size $n (exit $?)"

  log "size $n: peers"
  timeout 900 "$PY" "$HERE/peers.py" --phrasebook "$pb" --shop "$shop" \
    --messages "$pb/messages.txt" --huashu-json "$TMP/huashu-$n.json" --label "$n" \
    --huashu-version "$huashu_version" \
    "${peer_args[@]}" --out "$TMP/peers-$n.json" >/dev/null ||
    die "peers.py failed for size $n"
  results+=("$TMP/peers-$n.json")
done

report_args=(--combine "${results[@]}")
[ -n "$out" ] && report_args+=(--out "$out")
[ "$json" = 1 ] && report_args+=(--json)
"$PY" "$HERE/peers.py" "${report_args[@]}"
