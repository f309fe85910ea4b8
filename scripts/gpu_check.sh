#!/usr/bin/env bash
# The GPU check (issue 11): on one CUDA GPU, in at most 8 minutes, the gpu-marked tests (tests/test_gpu.py), training
# throughput against plain PyTorch (scripts/bench_train.py: fp32, bf16, torch.compile), evaluation throughput through
# FID (scripts/bench_eval.py) and N runs packed on the GPU (scripts/bench_pack.py). One line per stage; each stage's
# output in <out_dir>/<stage>.log (.err: its stderr), all of it in <out_dir>/gpu_check.json and gpu_check.md.
#
#   bash scripts/gpu_check.sh [out_dir]    # default: $OUT if set, else runs/gpu_check/
#
# Exit status: 0 when every stage passed, 1 when the gpu tests or another stage failed or ran out of time, 2 (one
# line) on a machine without a CUDA GPU. PYTHON picks the interpreter (default: .venv/bin/python if present).
set -uo pipefail

out=${1:-${OUT:-}}
[[ -n $out && $out != /* ]] && out=$PWD/$out  # relative to where it was launched from
cd "$(dirname "$0")/.." || exit 2
out=${out:-$PWD/runs/gpu_check}
python=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_check: no CUDA GPU here (nvidia-smi is missing or fails); run it on a machine with one" >&2
  exit 2
fi
if ! "$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
  echo "gpu_check: $python's torch sees no CUDA GPU (torch.cuda.is_available() is False)" >&2
  exit 2
fi
mkdir -p "$out" || exit 2

# report init | add NAME RC SECONDS LIMIT SHOW COMMAND | markdown: gpu_check.json and gpu_check.md, one line per stage.
report() { "$python" scripts/gpu_check_report.py "$out" "$@"; }

# stage NAME SECONDS SHOW COMMAND...: COMMAND under timeout (cut to what is left of the 8 minutes), its stdout in
# NAME.log and its stderr in NAME.err; SHOW says what its line shows: junit, or LABEL_COLUMNS:VALUE_COLUMN of its table.
deadline=$((SECONDS + 470))
failed=0
stage() {
  local name=$1 limit=$2 show=$3 started=$SECONDS rc command
  shift 3
  printf -v command '%q ' "$@"
  rm -f "$out/$name".{log,err,xml}  # an earlier check's, in the same out_dir
  ((limit > deadline - SECONDS)) && limit=$((deadline - SECONDS))
  if ((limit < 10)); then
    rc=skipped
  else
    timeout -k 10 "$limit" "$@" >"$out/$name.log" 2>"$out/$name.err"
    rc=$?
  fi
  report add "$name" "$rc" "$((SECONDS - started))" "$limit" "$show" "${command% }" || failed=1
}

report init || exit 1
stage gpu_tests 200 junit \
  "$python" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py --junitxml="$out/gpu_tests.xml"
train=("$python" scripts/bench_train.py --device cuda --steps 100 --warmup 5)
stage train_fp32 45 loss:ratio "${train[@]}" --trials 3
stage train_bf16 45 loss:ratio "${train[@]}" --trials 3 --precision bf16-mixed
stage eval_fid 60 "device,real statistics:end-to-end generated img/s" \
  "$python" scripts/bench_eval.py --devices cuda --metrics fid --num-fake 5000 --num-real 5000 --batch-size 250
rm -rf "$out/pack"
stage pack 60 "runs:total G steps/s (end to end)" \
  "$python" scripts/bench_pack.py --accelerator gpu --steps 300 --runs 1,2,4,8 --out "$out/pack"
stage train_compile 100 loss:ratio "${train[@]}" --trials 1 --compile
report markdown
verdict=passed
((failed)) && verdict=FAILED
echo "gpu_check: $verdict in $SECONDS s: $out/gpu_check.md, $out/gpu_check.json"
exit "$failed"
