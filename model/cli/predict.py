"""``python -m model predict``: a class file in, a results file and a problems file out.

The file is read, validated, predicted, logged and written a chunk at a time (``--chunk-rows``,
default 20,000), so a district file of a million rows runs in bounded memory: the dashboard's and
the API's limit of 100,000 rows is not the command line's. Each chunk is one request in the
prediction log; row numbers, in both output files and the messages, are those of the whole file.

Exit codes: 0 every row predicted, 3 some rows rejected (listed in the problems file), 2 the whole
file rejected.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from model.cli.common import EXIT_OK, EXIT_PARTIAL, CommandError, add_command, migrated_engine
from model.errors import BatchRejected, Problem
from model.schema.reading import STREAM_CHUNK_ROWS
from model.schema.validation import validate_chunks
from model.serving.downloads import problems_table, results_table, to_csv_bytes, to_csv_rows
from model.serving.service import ModelStore, log_failure, predict_validated
from model.settings import get_settings

SHOWN_PROBLEMS = 10


class _CsvOut:
    """A CSV file written chunk by chunk, created at the first chunk (the header and BOM with it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None

    def write(self, table: pd.DataFrame) -> None:
        if self._file is None:
            self._file = self.path.open("wb")
            self._file.write(to_csv_bytes(table))
        elif len(table):
            self._file.write(to_csv_rows(table))

    @property
    def started(self) -> bool:
        return self._file is not None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


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
    store = ModelStore(engine, settings=settings)
    results, report = _CsvOut(output), _CsvOut(rejected_path)
    n_rows = n_ok = n_bad = 0
    shown: list[Problem] = []
    started = time.perf_counter()
    try:
        for validation in validate_chunks(source, args.chunk_rows):
            prediction = predict_validated(store, engine, validation, channel="cli")
            results.write(results_table(prediction))
            if prediction.problems:
                report.write(problems_table(prediction.problems))
                shown += prediction.problems[: SHOWN_PROBLEMS - len(shown)]
            n_rows += prediction.n_rows
            n_ok += len(prediction.results)
            n_bad += len(prediction.rejected_rows)
    except BatchRejected as error:
        if not results.started:
            log_failure(engine, settings, channel="cli", user_id=None, error=error,
                        latency_ms=(time.perf_counter() - started) * 1000)  # fmt: skip
        raise CommandError(f"{source}: {error}") from None
    finally:
        results.close()
        report.close()
    print(f"{n_ok:,} of {n_rows:,} rows predicted -> {output}")
    if n_bad:
        print(f"{n_bad:,} rows rejected; problems -> {rejected_path}")
        for problem in shown:
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
