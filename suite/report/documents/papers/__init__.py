"""One module per paper whose claim the suite retests: each turns a runs table into the Markdown
verdict (what the paper found, what we measured, whether the two agree), read by
:mod:`suite.report.documents.experiments`; their shared wording is :mod:`.text`."""
