"""The command line: ``python -m model COMMAND``. Exit codes: 0 ok, 2 bad usage or rejected input,
3 some rows rejected, 1 an alert fired (``monitor --check``)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from model.accounts.users import ensure_first_admin, first_admin_message
from model.errors import BatchRejected, UserError
from model.logs import configure_logging
from model.ml import dataset as data_module
from model.ml.evaluation import comparison_table, evaluate, to_json
from model.ml.training import BOOTSTRAP_RUNS, ensure_default_models, register, train_setup
from model.schema.fields import SETUPS
from model.schema.thresholds import Thresholds
from model.serving.downloads import problems_table, results_table, to_csv_bytes
from model.serving.service import ModelStore, NoActiveModel, predict_batch
from model.settings import get_settings
from model.store import registry
from model.store.db import get_engine, migrate, session_scope

EXIT_OK, EXIT_ALERT, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
# Modules that add their own sub-commands with ``register(subparsers)``.
EXTENSIONS: tuple[str, ...] = (
    "model.cli.apikeys",
    "model.cli.monitor",
    "model.cli.security",
    "model.ml.compare",
    "model.ml.modelcard",
    "model.ml.export",
)


class CommandError(UserError):
    """A user-facing failure: printed without a traceback, exit code 2."""


def _setups(choice: str) -> list[str]:
    return list(SETUPS) if choice == "all" else [choice]


def cmd_fetch_data(args: argparse.Namespace) -> int:
    print(data_module.fetch(args.data, get_settings()))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    print(f"database at revision {migrate(get_engine())}")
    return EXIT_OK


def cmd_bootstrap(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    migrate(engine)
    frame = data_module.load_raw(args.data, settings)
    with session_scope(engine) as session:
        created = ensure_default_models(session, frame, runs=args.runs, settings=settings)
    for version_id in created:
        print(f"trained and activated {version_id}")
    if not created:
        print("every setup already has an active model")
    with session_scope(engine) as session:
        password = ensure_first_admin(session, settings=settings)
    if password is not None:
        print(first_admin_message(password, settings=settings), flush=True)
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = get_engine(settings.database_url)
    migrate(engine)
    frame = data_module.load_raw(args.data, settings)
    for setup in _setups(args.setup):
        trained = train_setup(frame, setup, runs=args.runs, n_jobs=args.jobs)
        with session_scope(engine) as session:
            version_id = register(session, trained, created_by=args.by, activate=args.activate, settings=settings)
        metrics = trained.metrics
        summary = ", ".join(
            f"{m} {metrics[m]['mean']:.3f}" for m in ("binary_accuracy", "five_level_accuracy", "rmse") if m in metrics
        )
        print(f"{version_id}{' (active)' if args.activate else ''}: {summary or 'not scored'}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    frame = data_module.load_raw(args.data, get_settings())
    result = evaluate(frame, runs=args.runs, setups=_setups(args.setup), n_jobs=args.jobs)
    print(f"Cortez & Silva (2008) protocol: 10-fold CV x {args.runs} runs, {len(frame)} students")
    print(comparison_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(result), indent=2), "utf-8")
    return EXIT_OK


def cmd_versions(args: argparse.Namespace) -> int:
    engine = get_engine()
    migrate(engine)
    with session_scope(engine) as session:
        active = registry.active_version_ids(session)
        versions = registry.list_versions(session, None if args.setup == "all" else args.setup)
    print(f"{'version':<36}{'setup':<9}{'created':<22}{'binary':>8}{'5-level':>9}{'rmse':>7}  active")
    for v in versions:
        m = v.metrics
        cells = [f"{m[k]['mean']:.3f}" if k in m else "-" for k in ("binary_accuracy", "five_level_accuracy", "rmse")]
        mark = "*" if active.get(v.setup) == v.id else ""
        print(
            f"{v.id:<36}{v.setup:<9}{v.created_at:%Y-%m-%d %H:%M:%S}   {cells[0]:>8}{cells[1]:>9}{cells[2]:>7}  {mark}"
        )
    return EXIT_OK


def cmd_promote(args: argparse.Namespace) -> int:
    settings = get_settings()
    with session_scope(get_engine(settings.database_url)) as session:
        registry.promote(session, args.version_id, by=args.by, settings=settings)
    print(f"promoted {args.version_id}")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    settings = get_settings()
    with session_scope(get_engine(settings.database_url)) as session:
        version_id = registry.rollback(session, args.setup, by=args.by, settings=settings)
    print(f"{args.setup} rolled back to {version_id}")
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    engine = get_engine()
    migrate(engine)
    source = Path(args.input)
    if not source.is_file():
        raise CommandError(f"input file not found: {source}")
    try:
        store = ModelStore(engine, thresholds=Thresholds.from_settings(get_settings()))
        prediction = predict_batch(store, engine, source.read_bytes(), channel="cli")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m model", description="mathsight core commands")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        command = sub.add_parser(name, help=help, description=help)
        command.set_defaults(func=func)
        return command

    add("fetch-data", cmd_fetch_data, "obtain and verify student-mat.csv").add_argument("--data", type=Path)
    add("migrate", cmd_migrate, "upgrade the database schema")
    boot = add("bootstrap", cmd_bootstrap, "migrate, then train and activate missing default models")
    boot.add_argument("--data", type=Path)
    boot.add_argument("--runs", type=int, default=BOOTSTRAP_RUNS, help="protocol runs scored per version")

    train = add("train", cmd_train, "train new model versions")
    train.add_argument("--data", type=Path)
    train.add_argument("--setup", choices=[*SETUPS, "all"], default="all")
    train.add_argument("--activate", action="store_true", help="make the new versions active")
    train.add_argument("--runs", type=int, default=5, help="protocol repetitions to score the version")
    train.add_argument("--jobs", type=int, default=-1)
    train.add_argument("--by", default="cli")

    ev = add("evaluate", cmd_evaluate, "the Cortez & Silva (2008) protocol, beside the paper's numbers")
    ev.add_argument("--data", type=Path)
    ev.add_argument("--runs", type=int, default=20)
    ev.add_argument("--setup", choices=[*SETUPS, "all"], default="all")
    ev.add_argument("--json", type=Path)
    ev.add_argument("--jobs", type=int, default=-1)

    versions = add("versions", cmd_versions, "list model versions; * marks the active one")
    versions.add_argument("--setup", choices=[*SETUPS, "all"], default="all")
    promote = add("promote", cmd_promote, "make a version the active one of its setup")
    promote.add_argument("version_id")
    promote.add_argument("--by", default="cli")
    rollback = add("rollback", cmd_rollback, "return a setup to its previous active version")
    rollback.add_argument("setup", choices=SETUPS)
    rollback.add_argument("--by", default="cli")

    predict = add("predict", cmd_predict, "predict a class file; exit 0 all rows ok, 3 some rejected, 2 file rejected")
    predict.add_argument("--input", required=True)
    predict.add_argument("--output", required=True)
    predict.add_argument("--rejected", help="where the problems go (default: OUTPUT.rejected.csv)")

    for module in EXTENSIONS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(get_settings())
    try:
        return args.func(args)
    except (UserError, NoActiveModel) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
