"""The report: run records in, tables, plots and documents out. Never imports the training code.

Four layers, each importing only those before it:

- ``read``: run records (through :mod:`suite.record`) -> validated rows and frames;
- ``compute``: seeds -> groups, the statistics of claims, scoring, reach, selection on val;
- ``present``: numbers as text, tables, ``plots``;
- ``documents``: the standard report, the protocol report, experiments, the published
  comparison, flatness, verdicts and the regression gate.

``python -m suite.report RUNS --out DIR`` (see ``__main__``); from code::

    from suite.report.read.collect import collect
    from suite.report.compute.stats import verdict
    runs = collect([Path("runs/exp1")]).runs
    print(verdict(runs, baseline="adamw", candidate="adamw8bit"))
"""
