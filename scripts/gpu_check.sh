#!/usr/bin/env bash
# The GPU check in one call, for a CUDA machine with no internet that has torch, timm,
# transformers and triton installed but not hydra, wandb or bitsandbytes:
#
#   1. install  the carried wheels (scripts/fetch_gpu_wheels.sh made them) and the suite
#   2. pytest   pytest -m gpu (tests/test_gpu.py and the other gpu-marked tests)
#   3. step     python -m suite.bench.step at 1e7, 1e8 and 1e9 parameters
#   4. bench    a short `make bench PROFILE=nightly` (BENCH_STEPS steps per run)
#   5. tier     the GPU tier, `make bench PROFILE=gpu` (suite/conf/protocol/gpu.yaml: the CPU
#               tier's val-chosen points at full budgets, TIER_JOBS runs at a time [12]) and
#               its report; needs the committed, complete results/cpu
#
#   scripts/gpu_check.sh                       # from the repository root
#   WHEELS=.whl STAGES="install pytest" OUT=/tmp/out scripts/gpu_check.sh
#
# Logs go to $OUT (at most 8 files, flat): gpu_check.log (environment and each stage's
# result), install.log, pytest-gpu.log, bench-step.log, bench-step.md, bench-nightly.log,
# nightly-report.tar.gz, gpu-tier.tar.gz (the tier's records, report and log) and, when
# BENCH_STEPS=full and a baseline exists, gate.log. Runs
# and the report are written under $WORK, never into results/. Every stage runs even if
# one before it failed (except that nothing runs if the install fails); the exit status
# is the number of failed stages.
#
# Environment (defaults in brackets):
#   PY           the Python that holds torch [python3]; packages are installed into it
#   WHEELS       the carried wheel folder [wheels]
#   OPTBENCH_DATA  the carried data root [shared/data or ../shared/data, if present]
#   OUT          where the logs go [./gpu-out]
#   WORK         runs and the nightly report [$TMPDIR/optbench-gpu-check]
#   STAGES       which stages, in order [install pytest step bench tier]
#   BENCH_STEPS  steps per bench run [200]; "full" runs the profile as it is (its own
#                budgets, about 20 runs of up to 2000 steps) and then the regression gate
#                against results/nightly-baseline if that folder exists
# shellcheck disable=SC2317  # the stage functions are called through run "$@"
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO" || exit 1
PY=${PY:-python3}
WHEELS=${WHEELS:-wheels}
OUT=${OUT:-./gpu-out}
WORK=${WORK:-${TMPDIR:-/tmp}/optbench-gpu-check}
STAGES=${STAGES:-install pytest step bench tier}
BENCH_STEPS=${BENCH_STEPS:-200}
if [[ -z ${OPTBENCH_DATA:-} ]]; then
  for d in "$REPO/shared/data" "$REPO/../shared/data"; do
    [[ -d $d ]] && OPTBENCH_DATA=$(cd "$d" && pwd) && break
  done
fi
export OPTBENCH_DATA=${OPTBENCH_DATA:-} WANDB_MODE=offline PYTHONUNBUFFERED=1
mkdir -p "$OUT" "$WORK"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu_check.log
: >"$LOG"

say() { echo "[gpu_check $(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }
failed=0

# run NAME LOGFILE CMD...: one stage, its output to the terminal and LOGFILE, its result logged
run() {
  local name=$1 logfile=$2 start=$SECONDS status
  shift 2
  say "$name: $*"
  "$@" 2>&1 | tee -a "$logfile"
  status=${PIPESTATUS[0]}
  if ((status == 0)); then
    say "$name: ok ($((SECONDS - start)) s)"
  else
    say "$name: FAILED with status $status ($((SECONDS - start)) s); see $(basename "$logfile")"
    failed=$((failed + 1))
  fi
  return "$status"
}

environment() {
  echo "repo: $REPO ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'no git'))"
  echo "python: $(command -v "$PY") ($("$PY" --version 2>&1))"
  echo "OPTBENCH_DATA: ${OPTBENCH_DATA:-(unset: ~/.cache/optbench)}; WHEELS: $WHEELS; WORK: $WORK"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 || true
  "$PY" - <<'EOF'
import importlib.metadata as md
import torch
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, available: {torch.cuda.is_available()}",
      f"({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "")
for name in ("timm", "transformers", "triton", "hydra-core", "omegaconf", "bitsandbytes", "wandb",
             "pandas", "pytest"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name} -")
EOF
}

install() {
  [[ -d $WHEELS ]] || { echo "no wheel folder $WHEELS (make one with scripts/fetch_gpu_wheels.sh)"; return 1; }
  local pkgs=(hydra-core omegaconf hydra-joblib-launcher hydra-submitit-launcher bitsandbytes)
  compgen -G "$WHEELS/wandb-*.whl" >/dev/null && pkgs+=(wandb)
  # resolved against what is installed; if an installed version clashes with a carried
  # wheel's requirement, install the carried wheels as they are and let pip check report it
  "$PY" -m pip install --no-index --find-links "$WHEELS" "${pkgs[@]}" || {
    echo "resolved install failed: installing every carried wheel without dependency checks"
    "$PY" -m pip install --no-index --no-deps "$WHEELS"/*.whl || return 1
  }
  # setuptools for the build comes from the wheel folder too
  "$PY" -m pip install --no-index --find-links "$WHEELS" --no-deps -e . || return 1
  "$PY" -m pip check || echo "(pip check: see above; the suite may still run)"
  "$PY" -c "import hydra, omegaconf, bitsandbytes, suite.run; print('imports ok')"
}

short_nightly() {
  # The nightly profile through suite.bench.profile (preflight, sweep, report, COMMAND.md)
  # with every task's step budget set to $1: profile.py has no steps option.
  "$PY" - "$1" "$WORK" <<'EOF'
import sys

import suite.bench.profile as bench

steps, work = int(sys.argv[1]), sys.argv[2]
load = bench.load_profile


def short(name):
    profile = load(name)
    profile["tasks"] = {t: {**(o or {}), "steps": steps} for t, o in profile["tasks"].items()}
    profile["description"] += f", capped at {steps} steps by scripts/gpu_check.sh"
    return profile


bench.load_profile = short
sys.exit(bench.main(["nightly", "--runs", f"{work}/runs", "--results", f"{work}/nightly"]))
EOF
}

bench() {
  rm -rf "$WORK/nightly"
  if [[ $BENCH_STEPS == full ]]; then
    if command -v make >/dev/null; then
      make bench PROFILE=nightly PY="$PY" ARGS="--runs $WORK/runs --results $WORK/nightly"
    else
      "$PY" -m suite.bench.profile nightly --runs "$WORK/runs" --results "$WORK/nightly"
    fi
  else
    short_nightly "$BENCH_STEPS"
  fi
}

run environment "$LOG" environment
for stage in $STAGES; do
  case $stage in
    install)
      run install "$OUT/install.log" install || { say "install failed: stopping"; exit 1; } ;;
    pytest)
      run pytest "$OUT/pytest-gpu.log" "$PY" -m pytest -m gpu -q -rs -p no:cacheprovider ;;
    step)
      # 1e9 parameters: 13 optimizers alive at once (interleaved timing) would need ~80 GB
      # of state, so that size runs one optimizer at a time
      : >"$OUT/bench-step.md"
      run step "$OUT/bench-step.log" "$PY" -m suite.bench.step --sizes 1e7 1e8 \
        --out "$WORK/bench-step-small.md" &&
        cat "$WORK/bench-step-small.md" >>"$OUT/bench-step.md"
      run step-1e9 "$OUT/bench-step.log" "$PY" -m suite.bench.step --sizes 1e9 --sequential \
        --out "$WORK/bench-step-1e9.md" &&
        cat "$WORK/bench-step-1e9.md" >>"$OUT/bench-step.md" ;;
    bench)
      run bench "$OUT/bench-nightly.log" bench
      if [[ -d $WORK/nightly ]]; then
        tar -czf "$OUT/nightly-report.tar.gz" -C "$WORK" nightly
        if [[ $BENCH_STEPS == full && -d results/nightly-baseline ]]; then
          run gate "$OUT/gate.log" "$PY" -m suite.report.documents.gate \
            --new "$WORK/nightly" --base results/nightly-baseline
        fi
      fi ;;
    tier)
      rm -rf "$WORK/gpu-tier"
      mkdir -p "$WORK/gpu-tier"
      run tier "$WORK/gpu-tier/tier.log" "$PY" -m suite.tune.transfer --protocol gpu \
        --jobs "${TIER_JOBS:-12}" --out "$WORK/gpu-tier" &&
        run tier-report "$WORK/gpu-tier/tier.log" "$PY" -m suite.report.documents.tier "$WORK/gpu-tier" \
          --protocol gpu
      tar -czf "$OUT/gpu-tier.tar.gz" --exclude='*.pt' -C "$WORK" gpu-tier ;;
    *)
      say "unknown stage $stage (valid: install pytest step bench tier)"
      failed=$((failed + 1)) ;;
  esac
done
say "done: $failed failed stage(s); logs in $OUT"
exit "$failed"
