"""What a sleeping greenlet costs by the deepest call it ever made: the frame-stack pages stay.

CPython 3.11 gives each greenlet its own chunk for Python frames; the pages of it a greenlet has
once reached stay resident while it lives, however shallow it sleeps. This spawns greenlets that
each go DEPTH frames deep once, come back and sleep, and prints the RSS each one adds.

    .venv/bin/python bench/frame_stack.py [GREENLETS] [DEPTH ...]
"""

from __future__ import annotations

import subprocess
import sys

import gevent


def _rss() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * 4096


def _deep(n: int, a: int = 1, b: int = 2, c: int = 3, d: int = 4, e: int = 5) -> int:
    if n:
        return _deep(n - 1, a, b, c, d, e)
    gevent.sleep(0.01)  # an exchange waits on the network at its deepest
    return 0


def _life(depth: int) -> None:
    _deep(depth)
    gevent.sleep(3600)


def measure(count: int, depth: int) -> float:
    """Bytes of RSS per greenlet, in this (fresh) process."""
    gevent.sleep(0)
    base = _rss()
    for i in range(count):
        gevent.spawn(_life, depth)
        if i % 100 == 0:
            gevent.sleep(0.001)
    gevent.sleep(1)
    return (_rss() - base) / count


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        print(f"{measure(int(sys.argv[2]), int(sys.argv[3])):.0f}")
        return
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    depths = [int(d) for d in sys.argv[2:]] or [0, 10, 20, 30, 40]
    shallow = None
    for depth in depths:  # each depth in a process of its own: freed pages are not returned
        out = subprocess.run(
            [sys.executable, __file__, "--one", str(count), str(depth)],
            capture_output=True,
            text=True,
            check=True,
        )
        per = float(out.stdout)
        shallow = per if shallow is None else shallow
        ratio = per / shallow
        print(f"depth {depth:3d}: {per:7.0f} B per sleeping greenlet ({ratio:.2f} of the first)")


if __name__ == "__main__":
    main()
