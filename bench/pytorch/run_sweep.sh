#!/bin/bash
# Store-all and checkpoint:S for S in {2,4,8,16} (S <= depth only), each in a
# fresh process because peak RSS is a per-process high-water mark. Every run's
# JSON object becomes one line of the output file.
#
#   bench/pytorch/run_sweep.sh [--out FILE] [siamese_torch.py options...]
#   e.g. bench/pytorch/run_sweep.sh --out sweep.jsonl --depth 16 --width 2048 --batch 256
set -euo pipefail

here=$(dirname "$(readlink -f "$0")")
out=pytorch_sweep.jsonl
depth=8  # siamese_torch.py's default
args=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --mode) echo "run_sweep.sh chooses the modes itself; drop --mode" >&2; exit 2 ;;
    --depth) depth=$2; args+=("$1" "$2"); shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
: >"$out"
for mode in store-all checkpoint:2 checkpoint:4 checkpoint:8 checkpoint:16; do
  if [[ $mode == checkpoint:* && ${mode#checkpoint:} -gt $depth ]]; then
    echo "# skipping $mode: more segments than the $depth layers" >&2
    continue
  fi
  /usr/bin/python3 "$here/siamese_torch.py" --mode "$mode" "${args[@]}" --json "$tmp"
  cat "$tmp" >>"$out"
done
echo "# wrote $(wc -l <"$out") results to $out" >&2
