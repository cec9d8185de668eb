"""Remembering the student ids of a 100,000-row upload: only the new ones encrypted and inserted.

``remember_students`` runs after every prediction request with ids. It used to encrypt every id of the
batch and upsert every row (``ON CONFLICT DO UPDATE``), even when the teacher had uploaded the same
class before; now it reads which keys the teacher has already, encrypts only the others and inserts
them in one ``INSERT ... ON CONFLICT DO NOTHING``. With a data key set (ids encrypted, as in
production), on a fresh SQLite file and a fresh PostgreSQL schema (``MATHSIGHT_BENCH_POSTGRES_URL``,
default the local test server; skipped when unreachable), this times in the same run the old path
(kept below as the baseline) and the new one, each for its own teacher:

- first upload: 100,000 ids never seen;
- same class again: the same 100,000 ids (a class uploaded after period 1, then after period 2);
- a new class of 30 ids for a teacher who already has 100,000.

and prints milliseconds and the ratio old / new (above 1: the new path is faster).
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from bench._common import isolated_home, on_both_databases

ROWS = 100_000
SMALL_CLASS = 30
REPEATS = 3


def _old_remember(engine: Engine, settings, user_id: int, student_ids: Sequence[str], keys: Sequence[str]) -> int:
    """The previous path, for the baseline: every row encrypted and upserted (``ON CONFLICT DO UPDATE``)."""
    from model.serving.students import PURPOSE
    from model.store import crypto
    from model.store.tables import StudentRef, utcnow

    latest = {key: str(raw).strip() for raw, key in zip(student_ids, keys, strict=True)}
    ring, now, rows = crypto.keyring(settings), utcnow(), []
    for key, text in latest.items():
        stored, key_id = ring.encrypt_text(text, PURPOSE)
        rows.append({"user_id": user_id, "student_key": key, "ref": stored, "ref_key_id": key_id, "updated_at": now})
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[engine.dialect.name](StudentRef)
    upsert = insert.on_conflict_do_update(
        index_elements=["user_id", "student_key"],
        set_={"ref": insert.excluded.ref, "ref_key_id": insert.excluded.ref_key_id,
              "updated_at": insert.excluded.updated_at},
    )  # fmt: skip
    with engine.begin() as connection:
        connection.execute(upsert, rows)
    return len(rows)


def _ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def _teachers(engine: Engine, names: Sequence[str]) -> list[int]:
    from model.store.tables import User

    with engine.begin() as connection:
        return [
            connection.execute(
                sa.insert(User).values(username=name, name=name, password_hash="-", role="teacher").returning(User.id)
            ).scalar_one()
            for name in names
        ]


def run(name: str, engine: Engine) -> None:
    from model.serving.predlog.writer import student_keys
    from model.serving.students import remember_students
    from model.settings import get_settings
    from model.store.db import migrate

    settings = get_settings()
    migrate(engine)
    ids = [f"BENCH-{i:06d}" for i in range(ROWS)]
    keys = student_keys(ids, settings)
    small_ids = [f"NEW-{i:03d}" for i in range(SMALL_CLASS)]
    small_keys = student_keys(small_ids, settings)
    old_teacher, new_teacher = _teachers(engine, ["old", "new"])
    paths = {
        "old": lambda i, k, teacher=old_teacher: _old_remember(engine, settings, teacher, i, k),
        "new": lambda i, k, teacher=new_teacher: remember_students(engine, settings, teacher, i, k),
    }
    first = {path: _ms(lambda call=call: call(ids, keys)) for path, call in paths.items()}
    again = {path: statistics.median(_ms(lambda call=call: call(ids, keys)) for _ in range(REPEATS))
             for path, call in paths.items()}  # fmt: skip
    small = {path: _ms(lambda call=call: call(small_ids, small_keys)) for path, call in paths.items()}
    for label, times in ((f"first upload of {ROWS:,} ids", first), (f"the same {ROWS:,} ids again", again),
                         (f"{SMALL_CLASS} new ids beside {ROWS:,}", small)):  # fmt: skip
        print(f"[{name}] {label}: old {times['old']:.0f} ms, new {times['new']:.0f} ms, "
              f"ratio old/new {times['old'] / times['new']:.1f}x", flush=True)  # fmt: skip


def main() -> None:
    isolated_home()
    from model.settings import get_settings
    from model.store import crypto

    os.environ.setdefault("MATHSIGHT_DATA_KEY", crypto.generate_key())  # ids encrypted, as in production
    get_settings.cache_clear()
    on_both_databases(run)


if __name__ == "__main__":
    main()
