"""Run every benchmark: ``python -m bench [NAME ...]`` calls ``main()`` of each ``bench/NAME.py``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path


def modules(names: list[str]) -> list[str]:
    """The benchmark modules to run: ``names`` or, when empty, every module of the package."""
    found = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if not m.name.startswith("_"))
    unknown = sorted(set(names) - set(found))
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(found)}")
    return names or found


def main(argv: list[str] | None = None) -> int:
    for name in modules(list(sys.argv[1:] if argv is None else argv)):
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        importlib.import_module(f"bench.{name}").main()
        print(f"== bench.{name} done in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
