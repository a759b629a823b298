"""`make bench-step`: the time of one optimizer step, for every registry entry, side by side.

    python -m suite.bench.step [--sizes 1e6 1e7 5e7] [--repeats 10] [--warmup 3]
                               [--only adamw torch_adamw ...] [--threads N] [--out table.md]
                               [--contended]

For each size, one set of float32 parameters shaped like a small transformer (four
layers of qkv/out/up/down matrices with their biases and two norm weights: almost every
value sits in a tensor of >= 4096 values, so 8-bit state applies) gets its gradients
once. Every entry then builds a fresh optimizer on those parameters (``lr=1e-3``;
SGD with ``momentum=0.9``), takes ``--warmup`` steps, and the median of ``--repeats``
timed steps is its ms/step. The timed steps are interleaved: each round steps every
entry once, so load from elsewhere on a shared machine spreads over all entries
(``--sequential``: one optimizer alive at a time, for a machine short of memory).
``torch_adamw`` (foreach) is always timed: it is the baseline of the ratio column.

Every size also times the machine's in-place memory bandwidth, ``a.add_(b)`` over as
many float32 values as the parameters (read a and b, write a: 12 bytes per value), in the
same rounds: the ``bandwidth`` row, and every entry's ``% bw`` is its GB/s over that.

``--contended``: each round times every entry (and the bandwidth) twice, quiet and with
a second process busy on one core (:mod:`suite.bench.contend`); ``ms contended`` is that
median and ``slowdown`` its ratio to the quiet one, measured in the same invocation.

Columns:
- ``state B/param``: ``suite.optim.state.state_bytes`` (every tensor in ``optimizer.state``)
  over the parameter count: 8 for 32-bit Adam, ~2.03 for 8-bit (codes + absmax + qmap).
- ``GB/s``: bytes moved / median time, where bytes moved is the least traffic a fully
  fused step needs: every parameter read and written, every gradient read, every state
  tensor read and written once, i.e. ``3 * param_bytes + 2 * state_bytes``. AdamW fp32:
  p, g, m, v read + p, m, v written = 28 B/param; SGD with momentum: 20 B/param; 8-bit
  Adam: 4 + 4 + 4 + 1 + 1 + 1 + 1 = 16 B/param plus twice the absmax (and qmap) bytes.
- ``% bw``: GB/s over the bandwidth row's GB/s at the same size (at 1M parameters the
  tensors fit in the L3 cache, so that is the cache's bandwidth).

An entry that fails to build or step (an optional library missing, an entry that needs
a CUDA device on a CPU machine) is a row with its error, never a crash. Optimizers with
modes (Schedule-Free) are put in training mode; Muon+AdamW splits the parameters by
shape (2-D to Muon). Entries whose step is torch.compile'd (torchao) compile during
the warmup steps, which are not timed.
"""

from __future__ import annotations

import argparse
import gc
import sys
from contextlib import nullcontext
from pathlib import Path

import pandas as pd
import torch

from suite.bench.contend import BusyCore
from suite.bench.step_table import format_table, header, to_markdown
from suite.bench.step_timing import BANDWIDTH, REFERENCES, bench_size
from suite.optim.registry import REGISTRY

BASELINE = "torch_adamw"
COLUMNS = ["name", "impl", "params", "ms/step", "ms min", "ratio", "state B/param", "GB/s"]
COLUMNS += ["% bw", "ms contended", "slowdown", "error"]


def run(
    sizes: list[float],
    names: list[str],
    warmup: int,
    repeats: int,
    device: torch.device,
    interleave: bool = True,
    log=print,
    contended: bool = False,
) -> pd.DataFrame:
    rows = []
    with BusyCore() if contended else nullcontext() as busy:
        for size in sizes:
            for row in bench_size(size, names, warmup, repeats, device, interleave, busy):
                done = f"{row['ms/step']:9.2f} ms" if "ms/step" in row else row["error"]
                if "slowdown" in row:
                    done += f"  contended {row['ms contended']:9.2f} ms ({row['slowdown']:.2f}x)"
                log(f"  {row['name']:<22} {row['params']:>11,}  {done}")
                rows.append(row)
            gc.collect()  # this size's params and optimizers, before the next size
    table = pd.DataFrame(rows, columns=COLUMNS)
    if not contended:
        table = table.drop(columns=["ms contended", "slowdown"])
    base = table[table["name"] == BASELINE].set_index("params")["ms/step"]
    table["ratio"] = table["ms/step"] / table["params"].map(base)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=float,
        default=[1e6, 1e7, 5e7],
        help="parameter counts (rounded to the model shape)",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per entry")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 1)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these registry entries")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="one entry at a time (less memory) instead of interleaved rounds",
    )
    parser.add_argument(
        "--contended",
        action="store_true",
        help="also time every entry with a second process busy on one core (slowdown column)",
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="also write the table: .csv or .md")
    args = parser.parse_args(argv)

    names = list(args.only or [*REGISTRY, *REFERENCES])
    valid = [*REGISTRY, *REFERENCES]
    unknown = [n for n in names if n not in valid]
    if unknown:
        parser.error(f"unknown entries {unknown}; valid: {', '.join(valid)}")
    if BASELINE not in names:
        names.insert(0, BASELINE)
    if args.out is not None and args.out.suffix not in (".csv", ".md"):
        parser.error("--out must end in .csv or .md")
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    title = header(device, args.contended)
    print(title, flush=True)
    table = run(
        args.sizes,
        names,
        args.warmup,
        args.repeats,
        device,
        interleave=not args.sequential,
        log=lambda line: print(line, file=sys.stderr, flush=True),
        contended=args.contended,
    )
    print(
        f"median of {args.repeats} steps after {args.warmup} warmup; ratio: ms/step over "
        f"{BASELINE} at the same size; GB/s: (3 x param bytes + 2 x state bytes) / median; "
        f"% bw: GB/s over the {BANDWIDTH} row (a.add_(b), 12 B/value) at the same size"
        + ("; slowdown: contended / quiet median, same rounds" if args.contended else "")
    )
    print(format_table(table))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix == ".csv":
            table.assign(environment=title).to_csv(args.out, index=False)
        else:
            args.out.write_text(to_markdown(table, title))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
