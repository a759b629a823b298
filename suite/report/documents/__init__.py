"""Documents: the standard report, the protocol report, experiments, the published
comparison, flatness, verdicts and the regression gate. Imports read, compute, present."""
