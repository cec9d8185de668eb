"""The database tables, as SQLAlchemy 2.0 typed declarative models.

Every timestamp is a timezone-aware UTC ``datetime`` (`UTCDateTime`), on SQLite as on PostgreSQL.
Schema changes go through an Alembic migration in ``model/store/migrations/versions``; a test checks that
the migrated schema matches this metadata.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.functions import FunctionElement

SETUPS = ("early", "period1", "period2")
ROLES = ("teacher", "admin")
SCOPES = ("predict", "admin")
CHANNELS = ("ui", "api", "cli")
STATUSES = ("ok", "rejected", "error")
INTERVENTION_KINDS = ("tutoring", "study_plan", "guardian_meeting", "attendance_plan", "support_referral", "other")
INTERVENTION_STATUSES = ("planned", "active", "done", "stopped")
FEEDBACK_CATEGORIES = ("useful", "not_useful", "wrongly_flagged", "already_handled", "not_applicable")
NEGATIVE_FEEDBACK = ("not_useful", "wrongly_flagged")  # what the alert on feedback rate counts
MONITORING_COLUMNS = (
    *("latency_ms", "created_at", "is_demo", "status", "channel", "band", "risk", "error_type", "predicted_g3"),
    *("p_pass", "model_version_id"),  # migration 0015: the expected-performance sums
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigIntegerId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A ``TIMESTAMP WITH TIME ZONE`` that always hands back aware UTC datetimes.

    SQLite keeps no zone, so values are stored converted to UTC and read back tagged as UTC.
    Naive datetimes are refused rather than guessed at.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use an aware one, e.g. datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class utc_day(FunctionElement[date]):
    """The UTC calendar day of a timestamp column, as a ``date`` (an index expression of the log)."""

    type = sa.Date()
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: Any, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: Any, **kw: Any) -> str:
    return f"(({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC')::date)"


def _one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=column)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: sa.JSON(none_as_null=True)}  # None: SQL NULL


class ModelVersion(Base):
    """One trained model: its provenance, quality, drift reference and signed artifact."""

    __tablename__ = "model_version"
    __table_args__ = (
        _one_of("setup", SETUPS),
        sa.Index("ix_model_version_setup_created_at", "setup", "created_at"),
    )

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    setup: Mapped[str] = mapped_column(sa.String(16))
    algorithm: Mapped[str] = mapped_column(sa.String(64))
    params: Mapped[dict[str, Any]]
    data_sha256: Mapped[str] = mapped_column(sa.String(64))
    n_rows: Mapped[int]
    metrics: Mapped[dict[str, Any]]
    reference: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(128))
    artifact: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    artifact_sha256: Mapped[str] = mapped_column(sa.String(64))
    artifact_hmac: Mapped[str] = mapped_column(sa.String(64))
    notes: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    schema_version: Mapped[int] = mapped_column(sa.Integer, server_default="1")
    signature_scheme: Mapped[int] = mapped_column(sa.Integer, server_default="1")  # see registry.SIGNATURE_SCHEME


class ActiveModel(Base):
    """The version each setup serves, and the one it replaced (what a rollback returns to)."""

    __tablename__ = "active_model"
    __table_args__ = (_one_of("setup", SETUPS),)

    setup: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    version_id: Mapped[str] = mapped_column(sa.ForeignKey("model_version.id"))
    activated_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_by: Mapped[str] = mapped_column(sa.String(128))
    previous_version_id: Mapped[str | None] = mapped_column(sa.ForeignKey("model_version.id"))


class User(Base):
    """A person who signs in: a teacher or an admin."""

    __tablename__ = "users"
    __table_args__ = (_one_of("role", ROLES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(128))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16))
    active: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    failed_logins: Mapped[int] = mapped_column(default=0, server_default="0")
    locked_until: Mapped[datetime | None]
    # Bumped by a password change, a deactivation and "sign out everywhere": every sign-in token
    # issued under an older generation stops working (model.accounts.sessions).
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")
    # The weekly digest (python -m model digest) goes to ``email`` only when the user opted in.
    digest_opt_in: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The dashboard's (and the digest's) language the user chose (model.i18n.LANGUAGES); None: the browser's.
    language: Mapped[str | None] = mapped_column(sa.String(8))


class ApiKey(Base):
    """An API key: only its prefix (for lookup) and a hash of the whole key are kept."""

    __tablename__ = "api_key"
    __table_args__ = (_one_of("scope", SCOPES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(sa.String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(sa.String(255))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    scope: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class PredictionLog(Base):
    """One row per predicted (or refused) student; a batch is written as one insert."""

    __tablename__ = "prediction_log"
    __table_args__ = (
        _one_of("channel", CHANNELS),
        _one_of("status", STATUSES),
        _one_of("setup", SETUPS),
        sa.Index("ix_prediction_log_created_at", "created_at"),
        sa.Index("ix_prediction_log_model_version_id_created_at", "model_version_id", "created_at"),
        sa.Index("ix_prediction_log_user_id_created_at", "user_id", "created_at"),
        sa.Index("ix_prediction_log_channel_created_at", "channel", "created_at"),
        sa.Index("ix_prediction_log_student_key", "student_key"),
        sa.Index("ix_prediction_log_request_id", "request_id"),
        # Covering indexes of the monitoring queries (migration 0003): per-day aggregates and
        # per-day latency percentiles walk the first in order; whole-window percentiles the second.
        sa.Index("ix_prediction_log_day", utc_day(sa.column("created_at")), *MONITORING_COLUMNS),
        sa.Index("ix_prediction_log_latency_ms", "latency_ms", "created_at", "is_demo"),
        # "Needs attention" (migration 0007): a teacher's rows per student, newest first, without the table.
        sa.Index(
            "ix_prediction_log_user_id_student_key",
            "user_id",
            "student_key",
            "created_at",
            "status",
            "p_pass",
            "setup",
            "risk",
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(BigIntegerId, primary_key=True)
    request_id: Mapped[str] = mapped_column(sa.String(64))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    channel: Mapped[str] = mapped_column(sa.String(8))
    model_version_id: Mapped[str | None] = mapped_column(sa.ForeignKey("model_version.id"))
    setup: Mapped[str | None] = mapped_column(sa.String(16))
    student_key: Mapped[str | None] = mapped_column(sa.String(64))
    inputs: Mapped[dict[str, Any] | None]
    predicted_g3: Mapped[float | None] = mapped_column(sa.Double)
    lower: Mapped[float | None] = mapped_column(sa.Double)
    upper: Mapped[float | None] = mapped_column(sa.Double)
    p_pass: Mapped[float | None] = mapped_column(sa.Double)
    p_no_grade: Mapped[float | None] = mapped_column(sa.Double)  # grade model v2: P(G3 = 0); NULL before it
    band: Mapped[str | None] = mapped_column(sa.String(4))
    risk: Mapped[str | None] = mapped_column(sa.String(16))
    latency_ms: Mapped[float | None] = mapped_column(sa.Double)
    status: Mapped[str] = mapped_column(sa.String(16))
    error_type: Mapped[str | None] = mapped_column(sa.String(64))
    is_demo: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Outcome(Base):
    """A real final grade, recorded later for a student (matched to predictions by ``student_key``)."""

    __tablename__ = "outcome"
    __table_args__ = (sa.CheckConstraint("g3 BETWEEN 0 AND 20", name="g3"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    student_key: Mapped[str] = mapped_column(sa.String(64), index=True)
    g3: Mapped[int]
    recorded_by: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Feedback(Base):
    """A teacher's verdict on one of their predictions (a category of FEEDBACK_CATEGORIES), with an optional why."""

    __tablename__ = "feedback"
    __table_args__ = (_one_of("category", FEEDBACK_CATEGORIES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prediction_id: Mapped[int] = mapped_column(
        BigIntegerId, sa.ForeignKey("prediction_log.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    category: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    """Who did what and when: promotions, rollbacks, user and key changes."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_created_at", "created_at"),
        sa.Index("ix_audit_log_action_created_at", "action", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigIntegerId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Alert(Base):
    """A monitoring rule that fired: kept open from first to last sighting until acknowledged."""

    __tablename__ = "alert"
    __table_args__ = (sa.Index("ix_alert_rule_last_seen", "rule", "last_seen"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float] = mapped_column(sa.Double)
    threshold: Mapped[float] = mapped_column(sa.Double)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict[str, Any] | None]
    acknowledged_by: Mapped[str | None] = mapped_column(sa.String(128))
    acknowledged_at: Mapped[datetime | None]


class RateLimitCounter(Base):
    """Requests a caller made in one fixed window (rows of past windows are pruned)."""

    __tablename__ = "rate_limit_counter"

    bucket: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True)
    hits: Mapped[int]


class LoginFailure(Base):
    """A failed (or refused) sign-in from a client address, for the back-off every replica shares."""

    __tablename__ = "login_failure"
    __table_args__ = (sa.Index("ix_login_failure_client_failed_at", "client", "failed_at"),)

    id: Mapped[int] = mapped_column(BigIntegerId, primary_key=True)
    client: Mapped[str] = mapped_column(sa.String(64))
    failed_at: Mapped[float] = mapped_column(sa.Double)  # seconds since the epoch


class UsedSigninCode(Base):
    """A sign-in cookie hand-off code already redeemed (kept until it expires): one use, on any replica."""

    __tablename__ = "used_signin_code"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(sa.Double)  # seconds since the epoch


class StudentRef(Base):
    """The student id a teacher typed, kept for that teacher only (encrypted under the data key when set)."""

    __tablename__ = "student_ref"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    student_key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    ref: Mapped[str] = mapped_column(sa.Text)  # base64 of nonce + ciphertext, or the id in clear
    ref_key_id: Mapped[str | None] = mapped_column(sa.String(16))  # None: stored in clear
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Intervention(Base):
    """What a teacher does for one of their students: a type, dates, a status and an encrypted note."""

    __tablename__ = "intervention"
    __table_args__ = (
        _one_of("kind", INTERVENTION_KINDS),
        _one_of("status", INTERVENTION_STATUSES),
        sa.CheckConstraint("review_date >= start_date", name="review_after_start"),
        sa.Index("ix_intervention_user_id_student_key", "user_id", "student_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    student_key: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[str] = mapped_column(sa.String(32))
    start_date: Mapped[date]
    review_date: Mapped[date]
    status: Mapped[str] = mapped_column(sa.String(16))
    note: Mapped[str | None] = mapped_column(sa.Text)
    note_key_id: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SchoolSetting(Base):
    """A threshold the school's admin set on the settings page (overrides the environment's default)."""

    __tablename__ = "school_setting"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(64))  # as text: a number, or a date YYYY-MM-DD
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(sa.String(128))


class RevokedSession(Base):
    """A sign-in token signed out before it expired (kept until then): refused on every replica."""

    __tablename__ = "revoked_session"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[float] = mapped_column(sa.Double)  # seconds since the epoch


JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
SERVING_ACTIONS = ("promote", "rollback")


class TrainingJob(Base):
    """A training job (``model.ml.jobs``): every replica reads its status and progress from here.

    ``running_slot`` is 1 while the job is queued or running and NULL afterwards; its unique
    constraint lets the database itself refuse a second running job in the installation."""

    __tablename__ = "training_job"
    __table_args__ = (_one_of("status", JOB_STATUSES), sa.Index("ix_training_job_created_at", "created_at"))

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    setup: Mapped[str] = mapped_column(sa.String(16))
    runs: Mapped[int]
    source: Mapped[str] = mapped_column(sa.String(255))
    created_by: Mapped[str] = mapped_column(sa.String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    n_rows: Mapped[int]
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    progress: Mapped[float] = mapped_column(sa.Double, default=0.0)
    stage: Mapped[str] = mapped_column(sa.String(255), default="")
    version_id: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    host: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int | None]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(sa.Double)
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    running_slot: Mapped[int | None] = mapped_column(sa.Integer, unique=True)
    options: Mapped[dict[str, Any] | None]  # the training-data choice (source, weights) handed to the process


class ModelServing(Base):
    """One period during which a version served its setup: the timeline of promotions and rollbacks.

    The open period of a setup has ``ended_at`` NULL. ``gate`` is the promotion gate table of the
    promotion (None for a rollback or when no gate was run) and ``reason`` what the admin wrote to
    promote past a failed gate."""

    __tablename__ = "model_serving"
    __table_args__ = (
        _one_of("setup", SETUPS),
        _one_of("action", SERVING_ACTIONS),
        sa.Index("ix_model_serving_setup_started_at", "setup", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    setup: Mapped[str] = mapped_column(sa.String(16))
    version_id: Mapped[str] = mapped_column(sa.ForeignKey("model_version.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    by: Mapped[str] = mapped_column(sa.String(128))
    action: Mapped[str] = mapped_column(sa.String(16))
    gate: Mapped[dict[str, Any] | None]
    reason: Mapped[str | None] = mapped_column(sa.Text)


class TrainingData(Base):
    """What a version learned from: its source and choices, and the rows themselves when they are the school's.

    ``rows`` is a gzip CSV of the training rows (no student ids), sealed under the data key when one
    is set (``rows_key_id``; NULL: in clear); NULL for the bundled UCI file, which is referenced by hash.
    """

    __tablename__ = "training_data"

    version_id: Mapped[str] = mapped_column(sa.ForeignKey("model_version.id", ondelete="CASCADE"), primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[dict[str, Any]]
    rows: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    rows_key_id: Mapped[str | None] = mapped_column(sa.String(16))


class OidcRule(Base):
    """An admin's rule for people who sign in through the school's identity provider (OpenID Connect):
    an e-mail address (``ana@school.pt``) or a whole domain (``@school.pt``) and the role it gets."""

    __tablename__ = "oidc_rule"
    __table_args__ = (_one_of("role", ROLES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pattern: Mapped[str] = mapped_column(sa.String(254), unique=True)
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.String(128))


class OidcIdentity(Base):
    """A person the identity provider vouched for (issuer and subject), and the mathsight user they
    became (none while they wait for an administrator's rule)."""

    __tablename__ = "oidc_identity"
    __table_args__ = (sa.UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issuer: Mapped[str] = mapped_column(sa.String(255))
    subject: Mapped[str] = mapped_column(sa.String(255))
    email: Mapped[str | None] = mapped_column(sa.String(254))
    name: Mapped[str | None] = mapped_column(sa.String(128))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)


class OidcSession(Base):
    """A provider sign-in (one ID token) seen by the dashboard: the session generation it started
    under, so a copy of the browser's identity cookie stops working like a password session does."""

    __tablename__ = "oidc_session"

    jti: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    generation: Mapped[int]
    expires_at: Mapped[float] = mapped_column(sa.Double)  # seconds since the epoch
