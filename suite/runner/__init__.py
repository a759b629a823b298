"""Everything one run needs around the training loop (``suite/run.py`` composes it,
``suite/train.py`` is the loop).

Before the first step: ``schema`` (the run config's one checking pass), ``preflight``
(the run folder and checkpoint refusals), ``memory_estimate``, ``threads``,
``distributed``, ``env``. During the run: ``loop_record`` (what the loop keeps and
writes), ``checkpoint``, ``interrupt``, ``faults``, ``progress``, ``telemetry``,
``peak_memory``, ``diagnose``. The run's folder: ``run_folder``,
``lock``, ``wandb_mirror``.
"""
