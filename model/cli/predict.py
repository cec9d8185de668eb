"""``python -m model predict``: a class file in, a results file and a problems file out.

The file is read, validated, predicted, logged and written a chunk at a time (``--chunk-rows``,
default 20,000), so a district file of a million rows runs in bounded memory: the dashboard's and
the API's limit of 100,000 rows is not the command line's. Each chunk is one request in the
prediction log; row numbers, in both output files and the messages, are those of the whole file.

A file of more than one chunk is shared out: this process reads and validates the chunks and writes
the outputs in file order, while ``WORKERS`` forked processes predict, log (each chunk through the
service's ``predict_validated``) and format them, at most ``IN_FLIGHT`` chunks at a time. Threads
would not do: most of that work holds the GIL. Each worker loads the models itself: loading them
starts LightGBM's OpenMP threads, which a forked child could not use (it would hang). The database
pool is emptied before the fork, so no connection crosses it.

Exit codes: 0 every row predicted, 3 some rows rejected (listed in the problems file), 2 the whole
file rejected.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import sys
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.engine import Engine

from model.cli.common import EXIT_OK, EXIT_PARTIAL, CommandError, add_command, migrated_engine
from model.errors import BatchRejected, Problem
from model.schema.reading import STREAM_CHUNK_ROWS
from model.schema.validation import ValidationResult, validate_chunks
from model.serving.downloads import problems_table, results_table, to_csv_bytes, to_csv_rows
from model.serving.service import ModelStore, ModelUnavailable, NoActiveModel, predict_validated, refusal_logged
from model.settings import get_settings

SHOWN_PROBLEMS = 10
WORKERS = 2
IN_FLIGHT = 2 * WORKERS  # chunks being predicted or waiting for a worker


@dataclass(frozen=True)
class _Chunk:
    """One predicted chunk: its results as CSV (with the BOM and header when it is the first), its problems."""

    csv: bytes
    problems: list[Problem]
    n_rows: int
    n_ok: int
    n_rejected: int


def _predict_chunk(store: ModelStore, engine: Engine, validation: ValidationResult, first: bool) -> _Chunk:
    try:
        prediction = predict_validated(store, engine, validation, channel="cli")
    except NoActiveModel as error:  # in a worker: a plain message crosses back to the reading process
        reason = f"\n  {error.reason}" if isinstance(error, ModelUnavailable) else ""
        raise CommandError(f"{error}{reason}") from None
    table = results_table(prediction)
    return _Chunk(to_csv_bytes(table) if first else to_csv_rows(table), prediction.problems, prediction.n_rows,
                  len(prediction.results), len(prediction.rejected_rows))  # fmt: skip


_worker: tuple[ModelStore, Engine] | None = None  # in a worker process: its own store, the engine forked with it


def _start_worker(engine: Engine) -> None:
    global _worker
    _worker = (ModelStore(engine, settings=get_settings()), engine)


def _in_worker(validation: ValidationResult, first: bool) -> _Chunk:
    assert _worker is not None
    return _predict_chunk(*_worker, validation, first)


class _Outputs:
    """The results file and the problems file, written chunk by chunk in file order (the problems file
    only once there is a problem); the counts and the first problems for the summary."""

    def __init__(self, results: Path, problems: Path) -> None:
        self.paths = (results, problems)
        self._files: list[BinaryIO | None] = [None, None]
        self.chunks = self.n_rows = self.n_ok = self.n_rejected = 0
        self.shown: list[Problem] = []

    def _write(self, which: int, data: bytes) -> None:
        file = self._files[which]
        if file is None:
            file = self._files[which] = self.paths[which].open("wb")
        file.write(data)

    def add(self, chunk: _Chunk) -> None:
        self._write(0, chunk.csv)
        if chunk.problems:
            table = problems_table(chunk.problems)
            self._write(1, to_csv_rows(table) if self._files[1] else to_csv_bytes(table))
            self.shown += chunk.problems[: SHOWN_PROBLEMS - len(self.shown)]
        self.chunks += 1
        self.n_rows += chunk.n_rows
        self.n_ok += chunk.n_ok
        self.n_rejected += chunk.n_rejected

    def close(self) -> None:
        for file in self._files:
            if file is not None:
                file.close()


def _shared_out(engine: Engine, chunks: Iterator[ValidationResult], outputs: _Outputs) -> None:
    """Predict ``chunks`` in the worker processes, writing each in order as soon as it and those before are done."""
    engine.dispose()  # no pooled connection may be shared with the forked workers
    context = multiprocessing.get_context("fork")
    pending: deque[Future[_Chunk]] = deque()
    with ProcessPoolExecutor(WORKERS, context, initializer=_start_worker, initargs=(engine,)) as pool:
        try:
            for number, validation in enumerate(chunks):
                pending.append(pool.submit(_in_worker, validation, number == 0))
                while len(pending) >= IN_FLIGHT or (pending and pending[0].done()):
                    outputs.add(pending.popleft().result())
            while pending:
                outputs.add(pending.popleft().result())
        finally:
            for future in pending:
                future.cancel()


def cmd_predict(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = migrated_engine(settings)
    source = Path(args.input)
    if not source.is_file():
        raise CommandError(f"input file not found: {source}")
    if args.chunk_rows < 1:
        raise CommandError(f"--chunk-rows must be a positive number of rows, not {args.chunk_rows}")
    output = Path(args.output)
    rejected_path = Path(args.rejected) if args.rejected else output.with_name(output.stem + ".rejected.csv")
    outputs = _Outputs(output, rejected_path)
    started = time.perf_counter()
    chunks = validate_chunks(source, args.chunk_rows)
    nothing_predicted = lambda: not outputs.chunks  # noqa: E731 (then the file as a whole was refused)
    try:
        with refusal_logged(engine, settings, channel="cli", user_id=None, started=started, only_if=nothing_predicted):
            first = next(chunks)
            second = next(chunks, None)
            if second is None:
                outputs.add(_predict_chunk(ModelStore(engine, settings=settings), engine, first, True))
            else:  # the models must not be loaded in this process before the fork
                _shared_out(engine, itertools.chain([first, second], chunks), outputs)
    except BatchRejected as error:
        raise CommandError(f"{source}: {error}") from None
    finally:
        outputs.close()
    print(f"{outputs.n_ok:,} of {outputs.n_rows:,} rows predicted -> {output}")
    if outputs.n_rejected:
        print(f"{outputs.n_rejected:,} rows rejected; problems -> {rejected_path}")
        for problem in outputs.shown:
            print(f"  {problem.message}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``predict``."""
    help = "predict a class file; exit 0 all rows ok, 3 some rejected, 2 file rejected"
    predict = add_command(sub, "predict", cmd_predict, help)
    input_help = "the class file (CSV, ';' or ',' separated, the template's columns, any number of rows)"
    predict.add_argument("--input", required=True, metavar="FILE", help=input_help)
    predict.add_argument("--output", required=True, metavar="FILE", help="where the predictions go (CSV)")
    predict.add_argument("--rejected", metavar="FILE", help="where the problems go (default: OUTPUT.rejected.csv)")
    chunk_help = f"rows read, predicted and written at a time (default {STREAM_CHUNK_ROWS:,})"
    predict.add_argument("--chunk-rows", type=int, default=STREAM_CHUNK_ROWS, metavar="N", help=chunk_help)
