"""``python -m model predict``: a class file in, a results file and a problems file out.

Exit codes: 0 every row predicted, 3 some rows rejected (listed in the problems file), 2 the whole
file rejected.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.cli.common import EXIT_OK, EXIT_PARTIAL, CommandError, add_command, migrated_engine
from model.errors import BatchRejected
from model.serving.downloads import problems_table, results_table, to_csv_bytes
from model.serving.service import ModelStore, predict_batch
from model.settings import get_settings


def cmd_predict(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = migrated_engine(settings)
    source = Path(args.input)
    if not source.is_file():
        raise CommandError(f"input file not found: {source}")
    try:
        prediction = predict_batch(ModelStore(engine, settings=settings), engine, source.read_bytes(), channel="cli")
    except BatchRejected as error:
        raise CommandError(f"{source}: {error}") from None
    output = Path(args.output)
    output.write_bytes(to_csv_bytes(results_table(prediction)))
    rejected_path = Path(args.rejected) if args.rejected else output.with_name(output.stem + ".rejected.csv")
    report = problems_table(prediction.problems)
    if len(report):
        rejected_path.write_bytes(to_csv_bytes(report))
    n_bad = len(prediction.rejected_rows)
    print(f"{len(prediction.results)} of {prediction.n_rows} rows predicted -> {output}")
    if n_bad:
        print(f"{n_bad} rows rejected; problems -> {rejected_path}")
        for problem in prediction.problems[:10]:
            print(f"  {problem.message}", file=sys.stderr)
        return EXIT_PARTIAL
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``predict``."""
    help = "predict a class file; exit 0 all rows ok, 3 some rejected, 2 file rejected"
    predict = add_command(sub, "predict", cmd_predict, help)
    predict.add_argument("--input", required=True, metavar="FILE",
                         help="the class file (CSV, ';' or ',' separated, the columns of the template)")  # fmt: skip
    predict.add_argument("--output", required=True, metavar="FILE", help="where the predictions go (CSV)")
    predict.add_argument("--rejected", metavar="FILE", help="where the problems go (default: OUTPUT.rejected.csv)")
