"""Run every benchmark: ``python -m bench [NAME ...]`` calls ``main()`` of each ``bench/NAME.py``.

``soak`` restarts the local PostgreSQL and ``school_quality`` measures model quality (minutes), so they run
only when named (``python -m bench soak``, ``python -m bench school_quality``).

The benchmark modules are imported inside :func:`benchmarks`, not at the top: ``bench.batch`` starts
a spawned child process, which re-runs this module's top level, and its peak memory must stay its own.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable


def benchmarks() -> dict[str, Callable[[], None]]:
    """Name -> ``main`` of every benchmark module."""
    from bench import api, attention, batch, district, monitoring, school_quality, single, soak, startup, students

    modules = (api, attention, batch, district, monitoring, school_quality, single, soak, startup, students)
    return {m.__name__.removeprefix("bench."): m.main for m in modules}


ONLY_WHEN_NAMED = ("soak", "school_quality")  # school_quality measures quality, not speed (a few minutes)


def chosen(names: list[str], available: dict[str, Callable[[], None]]) -> list[str]:
    """The benchmarks to run: ``names`` or, when empty, every one."""
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available)}")
    return names or [name for name in available if name not in ONLY_WHEN_NAMED]


def main(argv: list[str] | None = None) -> int:
    available = benchmarks()
    for name in chosen(list(sys.argv[1:] if argv is None else argv), available):
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        available[name]()
        print(f"== bench.{name} done in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
