"""Optimizer state bytes per parameter at each CPU-tier workload's chosen point, measured now
(2-step runs with the tier's sizes and each optimizer's selected.json overrides; state is
allocated at the first step), beside the value the tier's scored run s1 recorded.

    python scripts/remeasure_state_bytes.py [WORKLOAD ...] [--optimizers A B ...]

Written for session 8's finding: until then `state_bytes` skipped state kept in lists (SOAP's
preconditioners GG and Q), so the committed tier under-records po_soap's state.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from suite.record import read_summary
from suite.tune.protocol import Protocol
from suite.tune.stages import selected_overrides

ap = argparse.ArgumentParser()
ap.add_argument("workloads", nargs="*")
ap.add_argument("--optimizers", nargs="+")
a = ap.parse_args()
cpu = Protocol.load("cpu")
print(
    "| workload | optimizer | params | state B/param now | recorded (s1) |\n|---|---|---|---|---|"
)
for w in a.workloads or cpu.workloads:
    spec = cpu.workloads[w]
    for opt in a.optimizers or cpu.optimizers:
        chosen = selected_overrides(cpu, w, opt)  # checked as the optimizer's plain overrides
        with tempfile.TemporaryDirectory() as tmp:
            overrides = [o for o in spec["overrides"] if not o.startswith("log_every")]
            cmd = [sys.executable, "-m", "suite.run", f"task={w}", f"optimizer={opt}", "steps=2",
                   "eval_every=0", "log_every=1", *cpu.run_overrides, *overrides,
                   *chosen, f"hydra.run.dir={tmp}/run"]  # fmt: skip
            subprocess.run(cmd, capture_output=True, check=True)
            now = read_summary(Path(tmp, "run"))
        rec = read_summary(cpu.out / w / opt / "reruns" / "s1")
        n = now["n_params"]
        print(f"| {w} | {opt} | {n} | {now['optimizer_state_bytes'] / n:.2f} | "
              f"{rec['optimizer_state_bytes'] / rec['n_params']:.2f} |", flush=True)  # fmt: skip
