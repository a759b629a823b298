"""The cases of ``make reliability`` (scripts/reliability.py), one module per kind of fault:
campaign (running, the record ledger, refusals), kills (SIGKILL, signals, NaN, sweeps),
disk (a full disk), inputs (bad input, damaged files, reused and shared run folders)."""
