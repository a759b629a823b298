"""The W&B mirror of a run record (never the source of truth: the record is).

mode ``auto`` is online when ``WANDB_API_KEY`` is set and offline otherwise;
offline writes real run files under ``<run dir>/wandb/offline-run-*`` that
``wandb sync`` uploads later. If online logging cannot start (no network, bad
key), the run goes on offline and its summary says so; an unreachable server is
found with a 3 s probe, once per sweep, and said once.

A resumed run logs into the W&B run its folder already holds (same id,
``resume="allow"``), and the loop replays the events its record kept, so the last
``.wandb`` file holds the whole history even when a SIGKILL cut the first one short.
The id is in the folder name under ``<run dir>/wandb/`` and in ``summary.wandb.id``.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MODES = ("auto", "offline", "online", "disabled")
PROBE_TIMEOUT_S = 3.0
# <run dir>/wandb/offline-run-20261201_203727-3is42g3w: the run id is the last part
RUN_FOLDER = re.compile(r"(?:offline-)?run-(?P<time>\d{8}_\d{6})-(?P<id>[a-z0-9]+)")


def recorded_id(run_dir: Path) -> str | None:
    """The W&B run id a run folder already holds (its wandb/ run folders), or None: a
    resume logs into the same W&B run, so its history is one run, not two."""
    found = sorted(
        (m["time"], m["id"])
        for p in Path(run_dir, "wandb").glob("*run-*")
        if p.is_dir() and (m := RUN_FOLDER.fullmatch(p.name))
    )
    return found[-1][1] if found else None


_REACHABLE: dict[str, str | None] = {}  # W&B server -> None if reachable, else why not


def unreachable(decision_file: Path | None) -> str | None:
    """Why the W&B server cannot be reached (a TCP connect, PROBE_TIMEOUT_S), or None.
    Decided once per process and, through ``decision_file`` (in the sweep folder), once
    per sweep: the other runs read the answer instead of waiting again."""
    url = os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai"
    if url in _REACHABLE:
        return _REACHABLE[url]
    if decision_file is not None and decision_file.is_file():
        try:
            decided = json.loads(decision_file.read_text())
            if decided.get("url") == url:
                _REACHABLE[url] = decided.get("unreachable")
                return _REACHABLE[url]
        except (OSError, ValueError):
            pass
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=PROBE_TIMEOUT_S).close()
        why = None
    except OSError as e:
        why = f"W&B server {url} unreachable: {e.strerror or e}"
    _REACHABLE[url] = why
    if decision_file is not None:
        try:
            decision_file.write_text(json.dumps({"url": url, "unreachable": why}) + "\n")
        except OSError:
            pass
    if why:  # said once, where it is decided
        print(f"warning: {why}; logged offline, sync later with `wandb sync`", flush=True)
    return why


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
        decision_file: Path | None = None,
    ) -> None:
        mode = cfg.mode
        if mode not in MODES:
            raise ValueError(f"invalid logger.mode {mode!r}; valid: {', '.join(MODES)}")
        if mode == "auto":
            mode = "online" if os.environ.get("WANDB_API_KEY") else "offline"
        self.mode, self.note, self.run = mode, None, None
        if mode == "disabled":
            return
        if os.environ.get("WANDB_MODE") == "":  # set but empty: unset (wandb rejects "")
            del os.environ["WANDB_MODE"]
        import wandb

        run_id = recorded_id(run_dir)
        kwargs = dict(
            id=run_id,
            resume="allow" if run_id else None,
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
        why = unreachable(decision_file) if mode == "online" else None
        if why:
            self.note, self.mode = f"online logging failed ({why}); logged offline", "offline"
            self.run = wandb.init(mode="offline", settings=wandb.Settings(**settings), **kwargs)
            return
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
        info = {"mode": self.mode, "dir": None, "note": self.note, "id": None}
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
            info["dir"], info["id"] = str(Path(self.run.dir).parent), self.run.id
            self.run.finish(exit_code=0 if summary["status"] == "ok" else 1)
        return info
