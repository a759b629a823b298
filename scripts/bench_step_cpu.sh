#!/usr/bin/env bash
# Remake the committed CPU step table, results/bench_step_cpu.md, in one run on a quiet
# machine: every 32-bit and 8-bit SGD/Adam/AdamW entry (in-house pure and fused, torch,
# bitsandbytes) and DeepSpeed's CPUAdam at 1M, 10M and 50M parameters, with the in-place
# bandwidth (a.add_(b)) measured in the same rounds, quiet and contended (a second process
# busy on one core, --contended) in the same invocation. Expected wall time on the quiet
# 2-core CI machine: about 3 minutes of timing (estimated from the step times of the
# previous table: ~95 s at 50M, ~20 s each at 10M and 1M; not run at 10M/50M while the
# machine was shared), plus on a first run ~3 minutes for DeepSpeed's JIT build and ~15 s
# for ours. Peak memory about 7 GB (every optimizer of a size alive at once).
#
# Settings (environment):
#   PY=.venv/bin/python      the interpreter
#   OUT=results/bench_step_cpu.md
#   DEEPSPEED=1              0: no DeepSpeed row. 1: install deepspeed 0.19.8 into
#                            .bench-deps/ (not the venv: it only adds a reference row;
#                            its CPUAdam JIT-compiles for ~3 minutes on first use, cached
#                            in torch's extension folder) and put it on PYTHONPATH
#   REPEATS=10 WARMUP=3      timed steps per entry (each quiet and contended), warmup
#   SIZES="1e6 1e7 5e7"      parameter counts (a smaller one for a smoke run)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${OUT:-results/bench_step_cpu.md}
DEEPSPEED=${DEEPSPEED:-1}
REPEATS=${REPEATS:-10}
WARMUP=${WARMUP:-3}
SIZES=${SIZES:-1e6 1e7 5e7}
ENTRIES="sgd adam adamw adamw_forloop adam8bit adamw8bit adam_fused adamw_fused sgd_fused
adam8bit_fused adamw8bit_fused torch_sgd torch_adam torch_adamw torch_adamw_forloop
torch_adamw_fused bnb_adam8bit bnb_adamw8bit"

if [ "$DEEPSPEED" = 1 ]; then
    if [ ! -d .bench-deps/deepspeed ]; then
        "$PY" -m pip install -q --no-deps --target .bench-deps \
            deepspeed==0.19.8 hjson msgpack py-cpuinfo einops psutil
    fi
    export PYTHONPATH=".bench-deps${PYTHONPATH:+:$PYTHONPATH}" DS_ACCELERATOR=cpu
    ENTRIES="$ENTRIES deepspeed_cpuadam"
    # build (or load) its op before the timed run, so the wall time below is the bench's
    "$PY" -c "import torch; from suite.bench.step_timing import deepspeed_cpu_adam as b; p = [torch.zeros(8)]; p[0].grad = torch.zeros(8); b(p).step()"
fi
# the in-house fused CPU kernels: built once (cold ~15 s), then loaded from the cache
"$PY" -c "from suite.optim.kernels import cpu; print('fused CPU kernels:', cpu.build_info())"

load=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
# shellcheck disable=SC2086  # ENTRIES and SIZES are lists
"$PY" -m suite.bench.step --sizes $SIZES --contended --repeats "$REPEATS" \
    --warmup "$WARMUP" --only $ENTRIES --out "$OUT"
wall=$(($(date +%s) - start))
{
    echo
    echo "Command: \`scripts/bench_step_cpu.sh\` (python -m suite.bench.step --sizes $SIZES" \
        "--contended --repeats $REPEATS --warmup $WARMUP --only <the entries above>)," \
        "wall time ${wall} s, load average before: $load."
} >> "$OUT"
echo "wrote $OUT (${wall} s)"
