"""The W&B mirror of a run record (never the source of truth: the record is).

mode ``auto`` is online when ``WANDB_API_KEY`` is set and offline otherwise;
offline writes real run files under ``<run dir>/wandb/offline-run-*`` that
``wandb sync`` uploads later. If online logging cannot start (no network, bad
key), the run goes on offline and its summary says so.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MODES = ("auto", "offline", "online", "disabled")


class WandbMirror:
    def __init__(
        self,
        cfg: Any,
        *,
        run_dir: Path,
        name: str,
        config: dict,
        group: str | None,
        tags: list[str],
    ) -> None:
        mode = cfg.mode
        if mode not in MODES:
            raise ValueError(f"invalid logger.mode {mode!r}; valid: {', '.join(MODES)}")
        if mode == "auto":
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
        self.mode, self.note, self.run = mode, None, None
        if mode == "disabled":
            return
        import wandb

        kwargs = dict(
            project=cfg.project,
            entity=cfg.entity,
            name=name,
            group=group,
            tags=sorted(set(tags)),
            config=config,
            dir=str(run_dir),
            reinit="finish_previous",
        )
        settings = dict(console="off", silent=True, x_disable_stats=True, disable_git=True)
        try:
            self.run = wandb.init(
                mode=mode, settings=wandb.Settings(**settings, init_timeout=60), **kwargs
            )
        except Exception as e:  # online failed: fall back to offline, never lose the run
            if mode != "online":
                raise
            self.note = f"online logging failed ({type(e).__name__}: {str(e).splitlines()[0][:200]}); logged offline"
            print(f"warning: W&B {self.note}", flush=True)
            self.mode = "offline"
            self.run = wandb.init(mode="offline", settings=wandb.Settings(**settings), **kwargs)

    def log(self, event: dict) -> None:
        if self.run is not None:
            data = {k: v for k, v in event.items() if k not in ("event", "step") and v is not None}
            self.run.log(data, step=event["step"])

    def finish(self, summary: dict) -> dict:
        """Close the W&B run with the record's summary; return what the summary records of it."""
        info = {"mode": self.mode, "dir": None, "note": self.note}
        if self.run is not None:
            for key in (
                "status",
                "steps",
                "final_train_loss",
                "steps_to_target",
                "optimizer_state_bytes",
                "peak_memory_bytes",
                "median_step_time_s",
            ):
                self.run.summary[key] = summary.get(key)
            for key, value in (summary.get("final") or {}).items():
                self.run.summary[f"final/{key}"] = value
            info["dir"] = str(Path(self.run.dir).parent)
            self.run.finish(exit_code=0 if summary["status"] == "ok" else 1)
        return info
