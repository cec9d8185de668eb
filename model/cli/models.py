"""Model versions from the command line: ``train``, ``evaluate``, ``versions``, ``promote``,
``rollback``, ``timeline``, ``compare``, ``judge``, ``gate``, ``card`` and ``export``."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, date, datetime, time
from pathlib import Path

from sqlalchemy.engine import Engine

from model.cli.common import (
    BY_HELP,
    EXIT_OK,
    SETUP_CHOICES,
    CommandError,
    add_command,
    add_training_data_option,
    chosen_setups,
    migrated_engine,
    transaction,
)
from model.ml import gates, training
from model.ml.compare import compare_versions
from model.ml.evaluation import coherence_report, coherence_table, comparison_table, evaluate, to_json
from model.ml.export import export_version, load_export, to_onnx
from model.ml.gates import gate_table, judge
from model.ml.modelcard import build_model_card
from model.ml.schooldata import TrainingChoice, school_training_set, training_set
from model.ml.training import train_setup
from model.ml.trainingdata import training_frame
from model.schema.fields import SETUPS
from model.settings import Settings, get_settings
from model.store import registry
from model.store.db import get_engine, session_scope

HEADLINE = ("binary_accuracy", "five_level_accuracy", "rmse")


def _training_sets(args: argparse.Namespace, engine: Engine, setups: list[str], settings: Settings) -> dict:
    """Setup -> the training set the options name: school outcomes (alone or pooled), a file, or the bundled file."""
    if args.from_outcomes is not None:
        if args.data is not None:
            raise CommandError("--from-outcomes and --data exclude each other")
        choice = TrainingChoice(args.from_outcomes, args.weight)
        with session_scope(engine) as session:
            return {s: school_training_set(session, s, choice, settings=settings) for s in setups}
    frame = training_frame(args.data, setups, settings=settings)
    choice = TrainingChoice("bundled" if args.data is None else "file", label=None if args.data is None
                            else f"training file {args.data.name}")  # fmt: skip
    return dict.fromkeys(setups, training_set(choice, frame))


def cmd_train(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = migrated_engine(settings)
    setups = chosen_setups(args.setup)
    for setup, rows in _training_sets(args, engine, setups, settings).items():
        trained = train_setup(rows.protocol, setup, runs=args.runs, n_jobs=args.jobs, fit_frame=rows.fit)
        trained.data_reference, trained.school_rows = rows.reference, rows.school
        trained.notes = f"trained from {rows.reference['label']}"
        with session_scope(engine) as session:
            version_id = training.register(session, trained, created_by=args.by, activate=args.activate,
                                           settings=settings)  # fmt: skip
        metrics = trained.metrics
        summary = ", ".join(f"{m} {metrics[m]['mean']:.3f}" for m in HEADLINE if m in metrics)
        print(f"{version_id}{' (active)' if args.activate else ''}: {summary or 'not scored'}")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    setups = chosen_setups(args.setup)
    frame = training_frame(args.data, setups, settings=get_settings())
    result = evaluate(frame, runs=args.runs, setups=setups, n_jobs=args.jobs)
    print(f"Cortez & Silva (2008) protocol: 10-fold CV x {args.runs} runs, {len(frame)} students")
    print(comparison_table(result))
    coherence = coherence_report(frame, setups)
    print(coherence_table(coherence))
    if args.json:
        payload = to_json(result) | {"coherence": coherence}
        Path(args.json).write_text(json.dumps(payload, indent=2), "utf-8")
    return EXIT_OK


def cmd_versions(args: argparse.Namespace) -> int:
    with transaction(get_settings()) as session:
        active = registry.active_version_ids(session)
        versions = registry.list_versions(session, None if args.setup == "all" else args.setup)
    print(f"{'version':<36}{'setup':<9}{'created':<22}{'binary':>8}{'5-level':>9}{'rmse':>7}  active")
    for v in versions:
        cells = [f"{v.metrics[k]['mean']:.3f}" if k in v.metrics else "-" for k in HEADLINE]
        mark = "*" if active.get(v.setup) == v.id else ""
        print(
            f"{v.id:<36}{v.setup:<9}{v.created_at:%Y-%m-%d %H:%M:%S}   {cells[0]:>8}{cells[1]:>9}{cells[2]:>7}  {mark}"
        )
    return EXIT_OK


def cmd_promote(args: argparse.Namespace) -> int:
    settings = get_settings()
    with transaction(settings) as session:
        if args.skip_gate:
            registry.promote(session, args.version_id, by=args.by, settings=settings)
            gate = None
        else:
            gate = gates.promote(session, args.version_id, by=args.by, settings=settings, reason=args.reason)
    if gate is not None:
        _print_gate(gate)
    print(f"promoted {args.version_id}")
    return EXIT_OK


def cmd_rollback(args: argparse.Namespace) -> int:
    settings = get_settings()
    with transaction(settings) as session:
        if args.to is None:
            version_id = registry.rollback(session, args.setup, by=args.by, settings=settings)
        else:
            version_id = registry.rollback_to(session, args.setup, args.to, by=args.by, settings=settings)
    print(f"{args.setup} rolled back to {version_id}")
    return EXIT_OK


def cmd_judge(args: argparse.Namespace) -> int:
    settings = get_settings()
    with transaction(settings) as session:
        result = judge(session, args.version_id, settings=settings, on=args.on, split=args.split)
    print(f"candidate = {result.candidate_id} ({result.how.get('candidate')})")
    print(f"active    = {result.active_id} ({result.how.get('active', 'none')})")
    print(f"scored on {result.data}")
    print(result.table.round(3).to_string())
    return EXIT_OK


def cmd_gate(args: argparse.Namespace) -> int:
    settings = get_settings()
    with transaction(settings) as session:
        gate = gate_table(session, args.version_id, settings=settings)
    _print_gate(gate)
    return EXIT_OK


def _print_gate(gate: dict) -> None:
    print(f"promotion gate on {gate['data']}: {'passed' if gate['passed'] else 'FAILED'}")
    for row in gate["rows"]:
        cells = [f"{row[k]:.3f}" if isinstance(row[k], float) else "-" for k in ("candidate", "active", "noise")]
        figures = f"{cells[0]:>9}{cells[1]:>9}{cells[2]:>8}"
        print(f"  {row['verdict'].upper():<5} {row['check']:<9}{row['metric']:<40}{figures}  {row['against']}")


def cmd_timeline(args: argparse.Namespace) -> int:
    with transaction(get_settings()) as session:
        periods = registry.timeline(session, args.setup)
    print(f"{'from (UTC)':<18}{'until (UTC)':<18}{'version':<36}{'how':<10}{'by':<16}gate")
    for p in periods:
        until = f"{p.ended_at:%Y-%m-%d %H:%M}" if p.ended_at is not None else "serving"
        gate = "-" if p.gate is None else ("passed" if p.gate.get("passed") else "FAILED")
        reason = f" (reason: {p.reason})" if p.reason else ""
        print(f"{p.started_at:%Y-%m-%d %H:%M}  {until:<18}{p.version_id:<36}{p.action:<10}{p.by:<16}{gate}{reason}")
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    settings = get_settings()
    reference = None if args.data is None else training_frame(args.data, SETUPS, settings=settings)
    with session_scope(get_engine(settings.database_url)) as session:
        result = compare_versions(session, args.version_a, args.version_b, reference, settings=settings)
    print(f"A = {result.a.id}\nB = {result.b.id}")
    print(result.metrics.round(3).to_string())
    print(f"\nsame pass/fail call on {result.pass_agreement:.1f}% of {result.n_reference} reference students; "
          f"mean |difference| of predicted grades {result.mean_abs_difference:.2f} points")  # fmt: skip
    print("\nmean |SHAP| per attribute (grade points)\n" + result.importance.head(args.top).round(3).to_string())
    return EXIT_OK


def cmd_card(args: argparse.Namespace) -> int:
    settings = get_settings()
    reference = None if args.data is None else training_frame(args.data, SETUPS, settings=settings)
    with session_scope(get_engine(settings.database_url)) as session:
        markdown = build_model_card(session, args.version_id, reference, settings=settings).to_markdown()
    if args.output:
        Path(args.output).write_text(markdown, "utf-8")
        print(f"model card of {args.version_id} -> {args.output}")
    else:
        print(markdown)
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    settings = get_settings()
    target = Path(args.output)
    target.mkdir(parents=True, exist_ok=True)
    with session_scope(get_engine(settings.database_url)) as session:
        exported = export_version(session, args.version_id, settings=settings)
    (target / exported.artifact_name).write_bytes(exported.artifact)
    (target / exported.sidecar_name).write_bytes(exported.sidecar_json())
    written = [exported.artifact_name, exported.sidecar_name]
    if args.onnx:
        onnx_name = f"{exported.version_id}.onnx"
        (target / onnx_name).write_bytes(to_onnx(load_export(exported.artifact, exported.sidecar, settings=settings)))
        written.append(onnx_name)
    print(f"{', '.join(written)} -> {target}")
    return EXIT_OK


def _date(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), time.min, tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def _setup_option(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument("--setup", choices=SETUP_CHOICES, default="all", help=f"{what} (default: %(default)s)")


def _jobs_option(command: argparse.ArgumentParser) -> None:
    command.add_argument("--jobs", type=int, default=-1, metavar="N",
                         help="parallel processes for the cross-validation (default: -1, one per core)")  # fmt: skip


def _version(command: argparse.ArgumentParser, name: str = "version_id", what: str = "the version") -> None:
    command.add_argument(name, help=f"{what}'s id (as `versions` lists it)")


def _add_training(sub: argparse._SubParsersAction) -> None:
    train = add_command(sub, "train", cmd_train, "train new model versions")
    add_training_data_option(train, "the training file")
    train.add_argument(
        "--from-outcomes",
        choices=("outcomes", "pooled"),
        metavar="{outcomes,pooled}",
        help="train on the school's recorded outcomes (the inputs logged with each student's latest "
        "prediction, joined to the final grade), alone ('outcomes') or pooled with the bundled file",
    )
    train.add_argument("--weight", type=int, default=1, metavar="N", help="with pooled: the school's rows count N "
                       "times in the final fit, 1-5 (default: %(default)s)")  # fmt: skip
    _setup_option(train, "the setup to train")
    train.add_argument("--activate", action="store_true", help="make the new versions active")
    train.add_argument("--runs", type=int, default=5, metavar="N",
                       help="protocol repetitions to score the version (default: %(default)s)")  # fmt: skip
    _jobs_option(train)
    train.add_argument("--by", default="cli", metavar="NAME", help=f"{BY_HELP} (default: %(default)s)")

    ev = add_command(sub, "evaluate", cmd_evaluate, "the Cortez & Silva (2008) protocol, beside the paper's numbers")
    add_training_data_option(ev, "the file to run the protocol on")
    ev.add_argument("--runs", type=int, default=20, metavar="N",
                    help="repetitions of 10-fold cross-validation (default: %(default)s, as in the paper)")  # fmt: skip
    _setup_option(ev, "the setup to evaluate")
    ev.add_argument("--json", type=Path, metavar="FILE", help="also write the figures to this JSON file")
    _jobs_option(ev)


def _add_registry(sub: argparse._SubParsersAction) -> None:
    versions = add_command(sub, "versions", cmd_versions, "list model versions; * marks the active one")
    _setup_option(versions, "the setup to list")
    promote = add_command(sub, "promote", cmd_promote, "make a version the active one of its setup")
    _version(promote, what="the version to make active")
    promote.add_argument("--by", default="cli", metavar="NAME", help=f"{BY_HELP} (default: %(default)s)")
    promote.add_argument("--reason", metavar="TEXT", help="why the version is promoted although it failed its gate "
                         "(kept on the timeline and in the audit log)")  # fmt: skip
    promote.add_argument("--skip-gate", action="store_true", help="promote without running the gate (first "
                         "installation, scripted restores); audited like any promotion")  # fmt: skip
    rollback = add_command(sub, "rollback", cmd_rollback, "return a setup to its previous or any earlier version")
    rollback.add_argument("setup", choices=SETUPS, help="the setup to roll back")
    rollback.add_argument("--to", metavar="VERSION", help="an earlier version of the setup's timeline to serve again "
                          "(default: the version the active one replaced)")  # fmt: skip
    rollback.add_argument("--by", default="cli", metavar="NAME", help=f"{BY_HELP} (default: %(default)s)")
    timeline = add_command(sub, "timeline", cmd_timeline, "which version served a setup from when to when, and why")
    timeline.add_argument("setup", choices=SETUPS, help="the setup whose timeline is shown")


def _add_inspection(sub: argparse._SubParsersAction) -> None:
    compare = add_command(sub, "compare", cmd_compare, "compare two model versions on the reference data")
    _version(compare, "version_a", "version A")
    _version(compare, "version_b", "version B")
    add_training_data_option(compare, "the students both versions predict")
    compare.add_argument("--top", type=int, default=10, metavar="N",
                         help="attributes shown in the importance table (default: %(default)s)")  # fmt: skip
    judged = add_command(sub, "judge", cmd_judge, "compare a version with the active one on our students")
    _version(judged, what="the candidate version")
    judged.add_argument(
        "--on",
        choices=("school", "bundled"),
        default="school",
        help="the school's recorded outcomes or the bundled UCI file (default: %(default)s)",
    )
    judged.add_argument(
        "--split",
        type=_date,
        metavar="YYYY-MM-DD",
        help="time split: versions that learn from "
        "the outcomes are fitted on students predicted before this day, all score the rest",
    )
    gate = add_command(sub, "gate", cmd_gate, "the promotion gate of a version against the active one")
    _version(gate, what="the candidate version")
    card = add_command(sub, "card", cmd_card, "the model card of a version, as Markdown")
    _version(card)
    add_training_data_option(card, "the students the fairness table is computed on")
    card.add_argument("--output", metavar="FILE", help="write to this file instead of the terminal")
    export = add_command(sub, "export", cmd_export, "write a version's artifact and JSON sidecar (and ONNX)")
    _version(export)
    export.add_argument("--output", required=True, metavar="DIR", help="directory for the files")
    export.add_argument("--onnx", action="store_true", help="also write the predicted-grade graph as ONNX")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the model commands."""
    _add_training(sub)
    _add_registry(sub)
    _add_inspection(sub)
