"""Shared set-up for the benchmarks: a temporary database with active models, class files."""

from __future__ import annotations

import os
import resource
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Engine


def isolated_home() -> Path:
    """Point mathsight's local state at a fresh temporary directory (call before other imports) and
    log there as the product does (one JSON line per prediction request)."""
    home = Path(tempfile.mkdtemp(prefix="mathsight-bench-"))
    os.environ["MATHSIGHT_HOME"] = str(home)
    os.environ.setdefault("MATHSIGHT_SECRET_KEY", "bench-secret-key-0123456789abcdef")
    os.environ.setdefault("MATHSIGHT_COOKIE_KEY", "bench-cookie-key-0123456789abcdef")
    from model.logs import configure_logging
    from model.settings import get_settings

    get_settings.cache_clear()
    configure_logging(get_settings())
    return home


def engine_with_models(url: str | None = None) -> Engine:
    """A migrated database (default: SQLite in the bench home) with an active model per setup."""
    from model.ml.dataset import load_raw
    from model.ml.training import ensure_default_models
    from model.settings import get_settings
    from model.store.db import get_engine, migrate, session_scope

    settings = get_settings()
    engine = get_engine(url or settings.database_url)
    migrate(engine)
    with session_scope(engine) as session:
        ensure_default_models(session, load_raw(settings=settings), runs=0, settings=settings)
    return engine


def class_frame(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """``n_rows`` students drawn from the real file, a third each with no grades, G1 only, G1 and G2.

    For speed measurements only: resampled real rows, never used to judge model quality.
    """
    from model.ml.dataset import load_raw
    from model.settings import get_settings

    raw = load_raw(settings=get_settings())
    frame = raw.sample(n_rows, replace=True, random_state=seed).reset_index(drop=True).drop(columns="G3")
    frame = frame.astype({"G1": "Int64", "G2": "Int64"})
    which = np.random.default_rng(seed).integers(0, 3, n_rows)
    frame.loc[which == 0, ["G1", "G2"]] = pd.NA
    frame.loc[which == 1, "G2"] = pd.NA
    frame.insert(0, "student_id", [f"BENCH-{i:06d}" for i in range(n_rows)])
    return frame


def class_file(n_rows: int, seed: int = 0) -> bytes:
    return class_frame(n_rows, seed).to_csv(index=False, sep=";").encode()


def on_both_databases(run: Callable[[str, Engine], object]) -> None:
    """``run(name, engine)`` on a fresh SQLite file, then on a fresh PostgreSQL schema (said skipped when the
    server, ``MATHSIGHT_BENCH_POSTGRES_URL``, is unreachable)."""
    from bench.monitoring import POSTGRES_URL, _postgres_schema  # here: bench.monitoring imports this module
    from model.store.db import dispose_engines, get_engine

    with tempfile.TemporaryDirectory() as tmp:
        run("sqlite", get_engine(f"sqlite:///{Path(tmp) / 'bench.db'}"))
        dispose_engines()
    with _postgres_schema() as url:
        if url is None:
            print(f"[postgresql] skipped: {POSTGRES_URL} unreachable")
        else:
            run("postgresql", get_engine(url))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))
