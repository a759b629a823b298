#!/usr/bin/env bash
# Remake every committed CPU result under results/ in one go (about 45 minutes on the
# 2-core CI machine), logging each step's output and wall time to results/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results/logs results/tasks
PY=.venv/bin/python
# offline machines: the real datasets in ../shared/data (as `make` does)
if [ -z "${OPTBENCH_DATA:-}" ] && [ -f ../shared/data/MANIFEST.txt ]; then
  export OPTBENCH_DATA=$(cd ../shared/data && pwd)
fi
STAMP=$(date +%Y-%m-%d_%H-%M-%S)
step() {  # step <name> <command...>
  local name=$1; shift
  echo "== $name: $*" | tee "results/logs/$name.log"
  local t0=$SECONDS
  "$@" 2>&1 | grep -v "gemm_4bit_forward" | tee -a "results/logs/$name.log"
  echo "== $name: $((SECONDS - t0)) s" | tee -a "results/logs/$name.log"
}
step bench-step $PY -m suite.bench.step --sizes 1e6 1e7 5e7 --out results/bench_step_cpu.md
step loop-overhead $PY -m suite.bench.overhead --steps 200 --repeats 3
# issue 3's short runs: each task to its target with AdamW, through the real entry point
for spec in "cnn_digits 3e-3" "vit_digits 2e-3" "lm_shakespeare 2e-3"; do
  set -- $spec
  step "task-$1" $PY -m suite.run task=$1 optimizer=adamw optimizer.lr=$2 logger=wandb progress=plain \
    hydra.run.dir=runs/tasks/$STAMP/$1
done
$PY -m suite.report runs/tasks/$STAMP --out results/tasks --force --title "Each task to its target (AdamW, seed 0)" > /dev/null
step exp-decoupled-wd make exp-decoupled-wd
step exp-sgd-vs-adam make exp-sgd-vs-adam
step exp-8bit make exp-8bit
step bench-quick make bench
