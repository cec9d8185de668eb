"""Model registry: trained versions with signed artifacts, and the version each setup serves.

An artifact is the joblib serialization of a fitted model, encrypted with AES-256-GCM when a data
key is set (:mod:`model.store.crypto`), stored with its SHA-256 and a signature: an HMAC-SHA256
(keyed by the ``secret_key`` setting) of a canonical JSON of what the version claims to be, its id,
setup, schema version, algorithm and parameters, training-data hash and size, metrics and drift
reference, together with that SHA-256 (:class:`Signed`).
Both are checked before anything is decrypted or unpickled, so a modified artifact, one signed with
another key, or a genuine artifact moved under another version's id, setup or metrics is refused and
never executed. Whatever signs, verifies, encrypts or decrypts takes the caller's ``Settings`` (the
secret and the data keys come from there, never from the environment directly).

Versions signed before the signature bound the version (``signature_scheme`` 1: the HMAC of the
bytes alone) are refused too, until :func:`resign_legacy_versions` (run by ``python -m model
migrate``/``bootstrap``, every CLI command and the API and dashboard at start) checks each with that
old scheme and signs it again under the binding one.

The functions take the caller's session and leave committing to it (``db.session_scope``);
``promote``, ``rollback`` and ``rollback_to`` change the active version and write their audit row and
their period of the serving timeline (``model_serving``: which version served each setup from when
to when, who switched, the gate table and any written reason) in that one transaction, and stay
consistent when several processes promote at once.
"""

from __future__ import annotations

import hashlib
import hmac as hmac_lib
import io
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import joblib
import sqlalchemy as sa
from sqlalchemy.orm import Session, undefer

from model.errors import UserError
from model.i18n import N_, tr
from model.settings import Settings
from model.store import crypto
from model.store.audit import audit
from model.store.db import UPSERT_INSERTS, json_dumps
from model.store.tables import SETUPS, ActiveModel, ModelServing, ModelVersion, utcnow

_ROLLBACK_ATTEMPTS = 5
SIGNATURE_SCHEME = 2  # 1: the HMAC of the artifact bytes alone (versions stored before migration 0006)


class RegistryError(UserError):
    """Base class of the registry's errors."""


class VersionNotFound(RegistryError, LookupError):
    """No model version has the requested id."""

    def __init__(self, version_id: str) -> None:
        super().__init__(tr("no model version {version}", version=repr(version_id)))
        self.version_id = version_id


class NothingToRollBack(RegistryError):
    """The setup has no active version, or no previous version to return to."""

    def __init__(self, setup: str) -> None:
        super().__init__(tr("setup {setup} has no previous model version to roll back to", setup=repr(setup)))
        self.setup = setup


class ArtifactIntegrityError(RegistryError):
    """An artifact does not match its SHA-256 or its signature: it was not loaded (``label`` names it)."""

    def __init__(self, label: str, reason: str, action: str | None = None) -> None:
        action = action or tr(
            "the artifact was modified or signed with another key, or moved from another version: check "
            "MATHSIGHT_SECRET_KEY, then train this setup again or import a trusted export of the version"
        )
        super().__init__(tr("refusing to load the artifact of model version {label}: {reason}; {action}",
                            label=label, reason=reason, action=action))  # fmt: skip
        self.label = label
        self.reason = reason


_LEGACY_ACTION = N_(
    "it was signed before signatures bound the version; run `python -m model migrate` with this installation's "
    "MATHSIGHT_SECRET_KEY to check and re-sign it"
)


@dataclass(frozen=True)
class Signed:
    """What a version's signature binds: its identity, provenance and quality, and its artifact's SHA-256."""

    version_id: str
    setup: str
    schema_version: int
    algorithm: str
    params: Mapping[str, Any]
    data_sha256: str
    n_rows: int
    metrics: Mapping[str, Any]
    reference: Mapping[str, Any]
    artifact_sha256: str

    @classmethod
    def of(cls, version: ModelVersion) -> Signed:
        return cls(**{name: getattr(version, "id" if name == "version_id" else name) for name in SIGNED_FIELDS})

    @classmethod
    def of_sidecar(cls, sidecar: Mapping[str, Any]) -> Signed:
        """The fields of an export's sidecar (see :mod:`model.ml.export`)."""
        return cls(**{name: sidecar[name] for name in SIGNED_FIELDS})

    def payload(self) -> bytes:
        """The canonical JSON that is signed (sorted keys, no spaces; mappings as the database stores them)."""
        document = {name: getattr(self, name) for name in SIGNED_FIELDS}
        document = json.loads(json_dumps(document)) | {"scheme": SIGNATURE_SCHEME}
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


SIGNED_FIELDS = tuple(Signed.__dataclass_fields__)


def serialize(obj: Any) -> bytes:
    """The joblib serialization of ``obj`` (zlib-compressed), as stored in the registry."""
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=3)
    return buffer.getvalue()


def sha256_hex(blob: bytes) -> str:
    """The hex SHA-256 of ``blob``."""
    return hashlib.sha256(blob).hexdigest()


def sign(blob: bytes, *, settings: Settings) -> str:
    """The hex HMAC-SHA256 of ``blob`` under the ``secret_key`` of ``settings``."""
    key = settings.local_secret("secret_key").encode("utf-8")
    return hmac_lib.new(key, blob, hashlib.sha256).hexdigest()


def sign_fields(signed: Signed, *, settings: Settings) -> str:
    """The signature of a version: the HMAC of ``signed.payload()``."""
    return sign(signed.payload(), settings=settings)


def verify_artifact_bytes(
    blob: bytes, signed: Signed, signature: str, label: str, *, settings: Settings, scheme: int = SIGNATURE_SCHEME
) -> None:
    """Raise `ArtifactIntegrityError` unless ``blob`` matches its SHA-256 and ``signature`` signs ``signed``."""
    if not hmac_lib.compare_digest(sha256_hex(blob), signed.artifact_sha256):
        raise ArtifactIntegrityError(label, tr("its SHA-256 does not match the recorded one"))
    if scheme != SIGNATURE_SCHEME:
        raise ArtifactIntegrityError(
            label, tr("it carries a signature of the old scheme {scheme}", scheme=scheme), tr(_LEGACY_ACTION)
        )
    if not hmac_lib.compare_digest(sign_fields(signed, settings=settings), signature):
        raise ArtifactIntegrityError(
            label, tr("its HMAC signature does not match its version id, setup, schema version, training data and "
                      "metrics under this installation's key")
        )  # fmt: skip


def load_artifact_bytes(blob: bytes, signed: Signed, signature: str, label: str, *, settings: Settings) -> Any:
    """Verify the stored bytes ``blob`` (e.g. read from an export file), decrypt them if needed, unpickle."""
    verify_artifact_bytes(blob, signed, signature, label, settings=settings)
    return joblib.load(io.BytesIO(crypto.keyring(settings).decrypt_artifact(blob)))


def verify_artifact(version: ModelVersion, *, settings: Settings) -> None:
    """Check a stored version's artifact and signature without unpickling it."""
    verify_artifact_bytes(version.artifact, Signed.of(version), version.artifact_hmac, version.id, settings=settings,
                          scheme=version.signature_scheme)  # fmt: skip


def load_artifact(version: ModelVersion, *, settings: Settings) -> Any:
    """The fitted model stored in ``version``, after its SHA-256 and signature were checked."""
    verify_artifact(version, settings=settings)
    return joblib.load(io.BytesIO(crypto.keyring(settings).decrypt_artifact(version.artifact)))


def resign(version: ModelVersion, *, settings: Settings) -> None:
    """Sign ``version`` (artifact loaded) as it now stands: its SHA-256 and signature, under the current scheme."""
    version.artifact_sha256 = sha256_hex(version.artifact)
    version.signature_scheme = SIGNATURE_SCHEME
    version.artifact_hmac = sign_fields(Signed.of(version), settings=settings)


def resign_legacy_versions(session: Session, *, settings: Settings) -> list[str]:
    """Re-sign under the binding scheme every version still signed by scheme 1 whose bytes pass that
    old check (SHA-256 and HMAC of the bytes under this key); returns their ids, audited. A version
    failing the old check keeps its old signature and stays refused."""
    query = sa.select(ModelVersion.id).where(ModelVersion.signature_scheme < SIGNATURE_SCHEME)
    done = []
    for version_id in list(session.scalars(query.order_by(ModelVersion.id))):
        version = get_version(session, version_id)
        sha_ok = hmac_lib.compare_digest(sha256_hex(version.artifact), version.artifact_sha256)
        if not sha_ok or not hmac_lib.compare_digest(sign(version.artifact, settings=settings), version.artifact_hmac):
            continue
        resign(version, settings=settings)
        audit(session, "model.resign", "migration", version_id=version_id, scheme=SIGNATURE_SCHEME)
        done.append(version_id)
    session.flush()
    return done


def register_version(
    session: Session,
    obj: Any,
    *,
    setup: str,
    algorithm: str,
    params: Mapping[str, Any],
    schema_version: int,
    data_sha256: str,
    n_rows: int,
    metrics: Mapping[str, Any],
    reference: Mapping[str, Any],
    created_by: str,
    notes: str = "",
    settings: Settings,
) -> ModelVersion:
    """Store a fitted model as a new (inactive) version with a signed artifact; audited.

    ``schema_version`` is the version of the field catalogue the model's inputs follow
    (``model.schema.fields.SCHEMA_VERSION`` when it was trained); it is signed with the rest."""
    if setup not in SETUPS:
        raise ValueError(f"unknown setup {setup!r}; expected one of {', '.join(SETUPS)}")
    blob = crypto.keyring(settings).encrypt_artifact(serialize(obj))
    now = utcnow()
    version = ModelVersion(
        id=f"{setup}-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}",
        setup=setup,
        algorithm=algorithm,
        params=json.loads(json_dumps(dict(params))),
        schema_version=schema_version,
        data_sha256=data_sha256,
        n_rows=n_rows,
        metrics=json.loads(json_dumps(dict(metrics))),
        reference=json.loads(json_dumps(dict(reference))),
        created_at=now,
        created_by=created_by,
        artifact=blob,
        notes=notes,
    )
    resign(version, settings=settings)
    session.add(version)
    session.flush()
    audit(session, "model.register", created_by, version_id=version.id, setup=setup, algorithm=algorithm)
    return version


def list_versions(session: Session, setup: str | None = None) -> list[ModelVersion]:
    """All versions (artifact bytes not loaded), newest first, optionally of one setup."""
    query = sa.select(ModelVersion).order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
    if setup is not None:
        query = query.where(ModelVersion.setup == setup)
    return list(session.scalars(query))


def get_version(session: Session, version_id: str) -> ModelVersion:
    """The version ``version_id`` with its artifact; raises `VersionNotFound`."""
    query = sa.select(ModelVersion).where(ModelVersion.id == version_id).options(undefer(ModelVersion.artifact))
    version = session.scalars(query).one_or_none()
    if version is None:
        raise VersionNotFound(version_id)
    return version


def active_versions(session: Session) -> dict[str, ModelVersion]:
    """The active version of each setup that has one, artifacts loaded."""
    query = (
        sa.select(ActiveModel.setup, ModelVersion)
        .join(ModelVersion, ModelVersion.id == ActiveModel.version_id)
        .options(undefer(ModelVersion.artifact))
    )
    return {setup: version for setup, version in session.execute(query)}


def active_version_ids(session: Session) -> dict[str, str]:
    """Setup -> active version id; one small query, cheap enough to poll every few seconds."""
    rows = session.execute(sa.select(ActiveModel.setup, ActiveModel.version_id))
    return {setup: version_id for setup, version_id in rows}


def _open_period(
    session: Session, setup: str, version_id: str, by: str, action: str,
    gate: Mapping[str, Any] | None = None, reason: str | None = None,
) -> None:  # fmt: skip
    """End the setup's open serving period and start ``version_id``'s (the timeline, :func:`timeline`)."""
    now = utcnow()
    session.execute(
        sa.update(ModelServing).where(ModelServing.setup == setup, ModelServing.ended_at.is_(None)).values(ended_at=now)
    )
    gate_json = json.loads(json_dumps(dict(gate))) if gate is not None else None
    session.add(ModelServing(setup=setup, version_id=version_id, started_at=now, by=by, action=action, gate=gate_json,
                             reason=reason))  # fmt: skip
    session.flush()


def timeline(session: Session, setup: str) -> list[ModelServing]:
    """The periods during which each version served ``setup``, oldest first (the open one last)."""
    query = sa.select(ModelServing).where(ModelServing.setup == setup)
    return list(session.scalars(query.order_by(ModelServing.started_at, ModelServing.id)))


def promotion_of(session: Session, version_id: str) -> ModelServing | None:
    """The latest promotion of ``version_id`` (with its gate table and written reason), if it was ever promoted."""
    query = sa.select(ModelServing).where(ModelServing.version_id == version_id, ModelServing.action == "promote")
    return session.scalars(query.order_by(ModelServing.started_at.desc(), ModelServing.id.desc())).first()


def promote(
    session: Session,
    version_id: str,
    by: str,
    *,
    settings: Settings,
    gate: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Make ``version_id`` the active version of its setup, remembering the one it replaces; audited.

    The switch is a single upsert, so concurrent promotions serialize in the database and each
    records the version it really replaced. Promoting the version already active changes nothing.
    The artifact is verified first: a tampered version is never activated. ``gate`` (the promotion
    gate table, :mod:`model.ml.gates`) and ``reason`` (why it was promoted past a failed gate) are kept
    on the timeline and in the audit row.
    """
    version = get_version(session, version_id)
    verify_artifact(version, settings=settings)
    current = session.scalar(sa.select(ActiveModel.version_id).where(ActiveModel.setup == version.setup))
    if current == version_id:
        return
    table = ActiveModel.__table__
    insert = _dialect_insert(session)(ActiveModel).values(
        setup=version.setup, version_id=version_id, activated_at=utcnow(), activated_by=by
    )
    upsert = insert.on_conflict_do_update(
        index_elements=[table.c.setup],
        set_={
            "version_id": insert.excluded.version_id,
            "activated_at": insert.excluded.activated_at,
            "activated_by": insert.excluded.activated_by,
            "previous_version_id": sa.case(
                (table.c.version_id == insert.excluded.version_id, table.c.previous_version_id),
                else_=table.c.version_id,
            ),
        },
    )
    active = session.scalars(upsert.returning(ActiveModel), execution_options={"populate_existing": True}).one()
    _open_period(session, version.setup, version_id, by, "promote", gate, reason)
    extra: dict[str, Any] = {}
    if gate is not None:
        extra["gate_passed"] = bool(gate.get("passed"))
    if reason:
        extra["reason"] = reason
    audit(
        session,
        "model.promote",
        by,
        setup=version.setup,
        version_id=version_id,
        previous_version_id=active.previous_version_id,
        **extra,
    )


def rollback(session: Session, setup: str, by: str, *, settings: Settings) -> str:
    """Reactivate the version that the active one replaced; returns its id. Audited.

    Rollback undoes one promotion: afterwards the setup has no previous version until the next
    promotion, so a second rollback raises `NothingToRollBack`.
    """
    for _ in range(_ROLLBACK_ATTEMPTS):
        row = session.execute(
            sa.select(ActiveModel.version_id, ActiveModel.previous_version_id)
            .where(ActiveModel.setup == setup)
            .with_for_update()
        ).one_or_none()
        if row is None or row.previous_version_id is None:
            raise NothingToRollBack(setup)
        verify_artifact(get_version(session, row.previous_version_id), settings=settings)
        # Guarded by the values just read: on SQLite (no FOR UPDATE) a concurrent change makes it
        # match no row, and the loop reads again.
        result = session.execute(
            sa.update(ActiveModel)
            .where(
                ActiveModel.setup == setup,
                ActiveModel.version_id == row.version_id,
                ActiveModel.previous_version_id == row.previous_version_id,
            )
            .values(
                version_id=row.previous_version_id,
                previous_version_id=None,
                activated_at=utcnow(),
                activated_by=by,
            )
        )
        if result.rowcount == 1:
            _open_period(session, setup, row.previous_version_id, by, "rollback")
            audit(
                session,
                "model.rollback",
                by,
                setup=setup,
                version_id=row.previous_version_id,
                previous_version_id=row.version_id,
            )
            return row.previous_version_id
    raise _still_changing(setup)


def rollback_to(session: Session, setup: str, version_id: str, by: str, *, settings: Settings) -> str:
    """Reactivate ``version_id``, any version that served ``setup`` before (not only the previous one); audited.

    The version it replaces becomes the one a plain :func:`rollback` returns to. Raises `RegistryError`
    for a version of another setup, one that never served, or the one serving now."""
    version = get_version(session, version_id)
    if version.setup != setup:
        raise RegistryError(tr("version {version} is a {model_setup} model, not a {setup} one",
                               version=version_id, model_setup=version.setup, setup=setup))  # fmt: skip
    served = session.scalar(sa.select(sa.func.count()).where(ModelServing.version_id == version_id))
    if not served:
        raise RegistryError(tr("version {version} never served {setup}: promote it instead (its gate is checked)",
                               version=version_id, setup=setup))  # fmt: skip
    verify_artifact(version, settings=settings)
    for _ in range(_ROLLBACK_ATTEMPTS):
        current = session.scalar(sa.select(ActiveModel.version_id).where(ActiveModel.setup == setup).with_for_update())
        if current is None:
            raise NothingToRollBack(setup)
        if current == version_id:
            raise RegistryError(tr("version {version} is already the active {setup} model", version=version_id,
                                   setup=setup))  # fmt: skip
        result = session.execute(
            sa.update(ActiveModel)
            .where(ActiveModel.setup == setup, ActiveModel.version_id == current)
            .values(version_id=version_id, previous_version_id=current, activated_at=utcnow(), activated_by=by)
        )
        if result.rowcount == 1:
            _open_period(session, setup, version_id, by, "rollback")
            audit(session, "model.rollback", by, setup=setup, version_id=version_id, previous_version_id=current)
            return version_id
    raise _still_changing(setup)


def _still_changing(setup: str) -> RegistryError:
    message = tr("the active model of {setup} kept changing during the rollback; try again", setup=repr(setup))
    return RegistryError(message)


def _dialect_insert(session: Session) -> Any:
    name = session.get_bind().dialect.name
    if name not in UPSERT_INSERTS:
        raise RegistryError(f"unsupported database dialect {name!r}")
    return UPSERT_INSERTS[name]
