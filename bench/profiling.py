"""Profile the subject's workers with py-spy while wrk loads them, and summarise the samples."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def py_spy() -> str:
    """Return the py-spy executable (next to this Python, or on PATH), installing it if absent."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found:
        return found
    print("installing py-spy into this environment for --profile", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    return str(beside)


def start(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """Start sampling gunicorn ``pid`` and its workers for ``seconds``, as collapsed stacks.

    ``--subprocesses`` follows the master's children: gunicorn recycles a worker
    after max_requests, so one worker's pid may not last the whole run.
    """
    command = [
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--format",
        "raw",
        "--rate",
        "250",
        "--duration",
        str(max(1, round(seconds))),
        "--output",
        str(output),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(process: subprocess.Popen[bytes]) -> str | None:
    """Wait for py-spy; return its complaint if it failed, else None."""
    out, _ = process.communicate(timeout=120)
    if process.returncode != 0:
        return out.decode(errors="replace").strip()[-500:] or f"exit {process.returncode}"
    return None


#: Leaf frames of a thread waiting (py-spy's idle detection lets some through): not work.
WAITING = {
    "EpollSelector.select (selectors.py)",
    "_worker (concurrent/futures/thread.py)",
    "Condition.wait (threading.py)",
}


def frame_name(frame: str) -> str:
    """Return ``function (path)`` for a py-spy frame, the path shortened, the line dropped."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/work/main/", "lib/python3."):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})" if path else name


def summarise(raw: Path, top: int = 15) -> str:
    """Return the hottest functions of a collapsed-stack file: self and inclusive samples."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        names = [frame_name(f) for f in frames]
        if names[-1] in WAITING:
            continue
        total += count
        own[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    if total == 0:
        return "no samples (py-spy saw no busy Python thread)"
    lines = [f"{total:,} samples of busy worker threads", "", "self %  function (self time)"]
    lines += [f"{100 * n / total:6.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "incl %  function (inclusive, unsubsvc code)"]
    ours = [(name, n) for name, n in inclusive.most_common() if "unsubsvc/" in name]
    lines += [f"{100 * n / total:6.1f}  {name}" for name, n in ours[:top]]
    return "\n".join(lines)
