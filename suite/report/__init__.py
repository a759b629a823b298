"""The report: run records in, tables and plots out. Never imports the training code.

``python -m suite.report RUNS --out DIR`` (see ``__main__``); from code::

    from suite.report import collect, verdict
    runs = collect([Path("runs/exp1")]).runs
    print(verdict(runs, baseline="adamw", candidate="adamw8bit"))
"""

from suite.report.collect import Records, aggregate, collect
from suite.report.stats import verdict, welch

__all__ = ["Records", "aggregate", "collect", "verdict", "welch"]
