"""How much `make run` prints while nothing happens (issue: the console was a wall).

    python -m bench.idle_console [--port 8300] [--minutes 2]

Runs `make run PORT=...` in this checkout (with its DATABASE_URL / REDIS_URL, else the embedded
servers), waits for the start-up banner, counts the console lines of the following minutes,
prints them and the figure per minute, then stops it with Ctrl-C as a person would.
"""

import argparse
import os
import queue
import signal
import subprocess
import threading
import time

from bench.common import ROOT, log

BANNER_END = "└"


def count_idle_lines(port: int, minutes: float) -> list[str]:
    """The lines `make run` printed in ``minutes`` after its banner."""
    process = subprocess.Popen(
        ["make", "run", f"PORT={port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    try:
        deadline = time.monotonic() + 600
        while BANNER_END not in (line := lines.get(timeout=deadline - time.monotonic())):
            log(line.rstrip())
        log(line.rstrip())
        idle, end = [], time.monotonic() + minutes * 60
        while (left := end - time.monotonic()) > 0:
            try:
                idle.append(lines.get(timeout=left))
            except queue.Empty:
                break
        return idle
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8300)
    parser.add_argument("--minutes", type=float, default=2.0)
    args = parser.parse_args()
    idle = count_idle_lines(args.port, args.minutes)
    for line in idle:
        print(line.rstrip())
    print(f"{len(idle)} lines in {args.minutes:g} idle minutes: {len(idle) / args.minutes:.1f}/min")


if __name__ == "__main__":
    main()
