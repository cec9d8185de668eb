"""Monitoring commands: ``monitor [--check]`` for cron, and ``demo-traffic`` to seed a demo history
(made by :mod:`model.monitoring.demo`)."""

from __future__ import annotations

import argparse

from sqlalchemy.orm import Session

from model.cli.common import EXIT_ALERT, EXIT_OK, add_command, add_data_option, migrated_engine
from model.ml import dataset
from model.monitoring.alerts import evaluate_alerts
from model.monitoring.demo import demo_traffic
from model.monitoring.drift import drift_report
from model.monitoring.queries import Window, overview
from model.serving.service import ModelStore
from model.settings import Settings, get_settings
from model.store.db import session_scope


def cmd_monitor(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = migrated_engine(settings)
    if not args.check:
        with session_scope(engine) as session:
            _print_overview(session, settings, args.days)
        return EXIT_OK
    with session_scope(engine) as session:
        firings = evaluate_alerts(session, settings)
    for firing in firings:
        print(f"ALERT {firing.rule}: {firing.message} (value {firing.value:.4g}, threshold {firing.threshold:.4g})")
    if not firings:
        print("no alert")
    return EXIT_ALERT if firings else EXIT_OK


def _print_overview(session: Session, settings: Settings, days: float) -> None:
    window = Window.last(days)
    figures = overview(session, window)
    latency = "-" if figures.p95_ms is None else f"p50 {figures.p50_ms:.1f} ms, p95 {figures.p95_ms:.1f} ms"
    print(f"last {days:g} days: {figures.rows} rows, {figures.error_rate:.1%} failed, latency {latency}, "
          f"feedback {figures.feedback_rate:.1%}{' (includes demo rows)' if figures.demo_rows else ''}")  # fmt: skip
    report = drift_report(session, settings, Window.last(settings.alert_drift_days))
    if report is not None and report.n_recent:
        print(report.table()[["attribute", "test", "p_value", "psi", "status"]].head(5).to_string(index=False))


def cmd_demo_traffic(args: argparse.Namespace) -> int:
    settings = get_settings()
    engine = migrated_engine(settings)
    store = ModelStore(engine, settings=settings)
    frame = dataset.load_raw(args.data, settings)
    summary = demo_traffic(engine, store, frame, args.days, args.rows_per_day, args.seed)
    print(f"DEMO DATA: {summary.rows} log rows over {args.days} days ({summary.rejected} rejected), "
          f"{summary.outcomes} outcomes, {summary.feedback} feedback remarks; marked is_demo")  # fmt: skip
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``monitor`` and ``demo-traffic``."""
    monitor = add_command(sub, "monitor", cmd_monitor,
                          "monitoring summary; --check evaluates alerts (exit 1 when one fires)")  # fmt: skip
    monitor.add_argument("--check", action="store_true", help="evaluate the alert rules; exit 1 when one fires")
    monitor.add_argument("--days", type=float, default=1.0, metavar="DAYS",
                         help="summary window in days, without --check (default: %(default)s)")  # fmt: skip
    demo = add_command(sub, "demo-traffic", cmd_demo_traffic,
                       "replace the demo data with realistic DEMO traffic (marked is_demo)")  # fmt: skip
    demo.add_argument("--days", type=int, default=30, metavar="N",
                      help="days of traffic, ending now (default: %(default)s)")  # fmt: skip
    demo.add_argument("--rows-per-day", type=int, default=60, metavar="N",
                      help="students predicted on an average weekday (default: %(default)s)")  # fmt: skip
    demo.add_argument("--seed", type=int, default=0, metavar="N",
                      help="random seed of the simulated traffic (default: %(default)s)")  # fmt: skip
    add_data_option(demo)
