#!/usr/bin/env bash
# Remake every committed CPU result under results/ in one go (about 7 hours on the
# 2-core CI machine; results/tasks and results/nanogpt_cpu hold their own commands), logging each step's output and wall time to results/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results/logs
PY=.venv/bin/python
# offline machines: the real datasets in ../shared/data (as `make` does)
if [ -z "${OPTBENCH_DATA:-}" ] && [ -f ../shared/data/MANIFEST.txt ]; then
  export OPTBENCH_DATA=$(cd ../shared/data && pwd)
fi
step() {  # step <name> <command...>
  local name=$1; shift
  echo "== $name: $*" | tee "results/logs/$name.log"
  local t0=$SECONDS
  "$@" 2>&1 | grep -v "gemm_4bit_forward" | tee -a "results/logs/$name.log"
  echo "== $name: $((SECONDS - t0)) s" | tee -a "results/logs/$name.log"
}
step bench-step bash scripts/bench_step_cpu.sh            # results/bench_step_cpu.md
step overhead-fmnist_mlp $PY -m suite.bench.overhead --task fmnist_mlp --steps 200 --repeats 3
step overhead-lm_shakespeare $PY -m suite.bench.overhead --task lm_shakespeare --steps 100 --repeats 2
step baselines make bench PROFILE=cpu                       # results/baselines + its report (~1.5 h)
# the CPU tier itself (results/cpu, about 20 core-hours, results/cpu/COMMAND.md) is remade by
# `make campaign`, not here; its report and these two verdicts read it
step tier-report make tier-report
step exp-sgd-vs-adam make exp-sgd-vs-adam
step exp-8bit make exp-8bit
step exp-decoupled-wd-baselines make exp-decoupled-wd-baselines
step exp-decoupled-wd make exp-decoupled-wd                 # its own lr x wd grid
step exp-decoupled-wd-lm-grid make exp-decoupled-wd-lm-grid # the same on the char LM (1.3 core-h)
step exp-sgd-vs-adam-cnn make exp-sgd-vs-adam-cnn           # SGD vs Adam, timm CNN, 1,500 steps (0.8 core-h)
step exp-sgd-vs-adam-cnn-3000 make exp-sgd-vs-adam-cnn SVA_STEPS=3000 SVA_EVAL=300 \
  SVA_SGD_LRS=0.125,0.25,0.5 SVA_ADAM_LRS=0.015625,0.03125,0.0625 \
  SVA_OUT=results/experiments/sgd_vs_adam_cnn_3000       # ... at 3,000 steps
step exp-deepobs make exp-deepobs EPOCHS=3                  # results/deepobs (~1.5 h)
step bench-quick make bench
