"""Where benchmark results go, and how one is written: a JSON record and its Markdown table,
each with the same environment record (command, git commit, versions, threads, machine, load
average before and after), so every result says how and where it was made.

    import records               # at the start: takes the command and the load before
    ...                          # measure
    records.save_record("name", record, markdown)   # adds load after, seconds; writes both

(`environment()` gives a fresh start record where one script measures several things.)
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
_REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=_REPO, capture_output=True, text=True,
                              timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip()


def environment() -> dict[str, Any]:
    """How and where this benchmark runs, taken at its start (call `save_record` at its end)."""
    import torch

    import rnnlab
    from rnnlab.nn.native import cpu_model

    commit = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
        "git_commit": commit + ("+dirty" if dirty and dirty != "unknown" else ""),
        "rnnlab": rnnlab.__version__, "torch": torch.__version__,
        "python": platform.python_version(), "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(), "machine": f"{platform.machine()} {platform.processor()}".strip(),
        "cpu_model": cpu_model(),  # speed ratios differ between vendors' CPUs
        "load_before": [round(x, 2) for x in os.getloadavg()],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "_t0": time.time(),
    }


def finish(env: dict[str, Any]) -> dict[str, Any]:
    """The environment record with the load average after and the wall time."""
    import torch

    done = {k: v for k, v in env.items() if k != "_t0"}
    # the threads the measurement ran with: scripts set them after importing this module
    done["threads"] = torch.get_num_threads()
    done["load_after"] = [round(x, 2) for x in os.getloadavg()]
    if "_t0" in env:
        done["seconds"] = round(time.time() - env["_t0"], 1)
    return done


def environment_line(env: dict[str, Any]) -> str:
    """One Markdown line that says how the numbers above were made."""
    return (f"Command: `{env['command']}` at {env['git_commit'][:12]}; rnnlab {env['rnnlab']}, "
            f"torch {env['torch']}, {env['threads']} threads on {env['cpus']} CPUs"
            f"{' (' + env['cpu_model'] + ')' if env.get('cpu_model') else ''}; load "
            f"average {env['load_before'][0]:.2f} before, {env['load_after'][0]:.2f} after.")


def save_record(name: str | Path, record: dict[str, Any], markdown: str,
                env: dict[str, Any] | None = None) -> None:
    """benchmarks/results/NAME.json and NAME.md, and the table on stdout. The JSON gets an
    "environment" entry and the Markdown its line, from `env` (default: the record taken when
    this module was imported, at the script's start)."""
    stem = RESULTS / name  # a path given as `name` (a script's --output) is used as it is
    stem.parent.mkdir(parents=True, exist_ok=True)
    done = finish(env if env is not None else STARTED)
    record = {**record, "environment": done}
    markdown = markdown.rstrip("\n") + "\n\n" + environment_line(done) + "\n"
    stem.with_name(stem.name + ".json").write_text(
        json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    stem.with_name(stem.name + ".md").write_text(markdown, encoding="utf-8")
    print(markdown)


STARTED = environment()  # the script's start: importing this module is among its first steps


def table_lines(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table: the header, its rule, and one line a row (cells as `str` gives them)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
