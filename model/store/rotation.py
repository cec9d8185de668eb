"""Data key rotation: re-encrypt what is stored under an old key (or in clear) with the current key.

Deploy with ``MATHSIGHT_DATA_KEY`` = the new key and ``MATHSIGHT_DATA_KEY_PREVIOUS`` = the old one
(both are readable meanwhile), run ``python -m model rotate-key``, then drop the previous key. Each
artifact is verified (SHA-256 and HMAC of its stored bytes) before it is decrypted, and re-signed
after; log inputs are rewritten in batches of ``batch_rows``, one transaction per batch, so a run
can be interrupted and repeated (rows already under the current key are skipped). The short texts
(student ids, intervention notes) are re-encrypted one table per transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session, undefer

from model.settings import Settings
from model.store import crypto, registry
from model.store.tables import Intervention, ModelVersion, PredictionLog, StudentRef, TrainingData

BATCH_ROWS = 2_000


@dataclass(frozen=True)
class RotationResult:
    """How many artifacts and log rows were re-encrypted under key ``key_id``."""

    key_id: str
    artifacts: int
    log_rows: int
    texts: int = 0  # student ids, intervention notes and school training rows kept with versions


def rotate_data_key(session: Session, *, settings: Settings, batch_rows: int = BATCH_ROWS) -> RotationResult:
    """Re-encrypt every artifact and logged input not yet under the current data key of ``settings``.

    Unlike other data functions this one commits, through the session it is given: once per artifact
    and once per batch of ``batch_rows`` log rows. A whole log re-encrypted in one transaction would
    hold its locks (and grow SQLite's WAL) for the entire run, and an interrupted run would lose
    everything it did; committed batches keep the work and let a repeated run skip it. It takes the
    session rather than a session factory so the front still opens (and closes) the one unit of work.
    """
    ring = crypto.keyring(settings)
    if ring.current is None:
        raise crypto.DataKeyError("set MATHSIGHT_DATA_KEY to the new key (and MATHSIGHT_DATA_KEY_PREVIOUS to the old)")
    artifacts = _rotate_artifacts(session, ring, settings)
    log_rows = _rotate_inputs(session, ring, batch_rows)
    texts = _rotate_texts(session, ring)
    return RotationResult(ring.current.key_id, artifacts, log_rows, texts)


def _rotate_artifacts(session: Session, ring: crypto.Keyring, settings: Settings) -> int:
    """Re-encrypt the artifacts of all versions, committing after each one."""
    assert ring.current is not None
    ids = list(session.scalars(sa.select(ModelVersion.id).order_by(ModelVersion.id)))
    session.commit()
    done = 0
    for version_id in ids:
        query = sa.select(ModelVersion).where(ModelVersion.id == version_id).with_for_update()
        version = session.scalars(query.options(undefer(ModelVersion.artifact))).one()
        if crypto.artifact_key_id(version.artifact) != ring.current.key_id:
            registry.verify_artifact(version, settings=settings)
            stored = ring.encrypt_artifact(ring.decrypt_artifact(version.artifact))
            version.artifact = stored
            registry.resign(version, settings=settings)
            done += 1
        session.commit()
        session.expunge(version)  # one artifact's bytes in memory at a time
    return done


def _rotate_inputs(session: Session, ring: crypto.Keyring, batch_rows: int) -> int:
    """Rewrite the inputs of log rows not under the current key, committing after each batch."""
    assert ring.current is not None
    log = PredictionLog.__table__.c
    enc = log.inputs[crypto.ENC_FIELD].as_string()
    stale = sa.or_(enc.is_(None), sa.not_(enc.startswith(f"{crypto.INPUTS_VERSION}:{ring.current.key_id}:")))
    update = (
        sa.update(PredictionLog.__table__)
        .where(log.id == sa.bindparam("row_id"))
        .values(inputs=sa.bindparam("new_inputs", type_=PredictionLog.__table__.c.inputs.type))
    )
    last_id, done = 0, 0
    while True:
        query = (
            sa.select(log.id, log.inputs)
            .where(log.id > last_id, log.inputs.is_not(None), stale)
            .order_by(log.id)
            .limit(batch_rows)
        )
        batch = session.execute(query).all()
        if not batch:
            session.commit()
            return done
        changes = [
            {"row_id": row_id, "new_inputs": ring.encrypt_inputs(ring.decrypt_inputs(inputs))}
            for row_id, inputs in batch
            if inputs is not None  # a JSON null: a rejected row without inputs
        ]
        if changes:
            session.execute(update, changes)
        session.commit()
        last_id, done = batch[-1][0], done + len(changes)


def _rotate_texts(session: Session, ring: crypto.Keyring) -> int:
    """Re-encrypt student ids and intervention notes not under the current key (in clear included)."""
    assert ring.current is not None
    current, done = ring.current.key_id, 0
    for table, text, key_id, purpose in (
        (StudentRef, StudentRef.ref, StudentRef.ref_key_id, "student_ref"),
        (Intervention, Intervention.note, Intervention.note_key_id, "note"),
    ):
        stale = sa.or_(key_id.is_(None), key_id != current)
        for row in session.scalars(sa.select(table).where(text.is_not(None), stale).with_for_update()):
            plain = ring.decrypt_text(getattr(row, text.key), getattr(row, key_id.key), purpose)
            stored, new_id = ring.encrypt_text(plain, purpose)
            setattr(row, text.key, stored)
            setattr(row, key_id.key, new_id)
            done += 1
        session.commit()
    return done + _rotate_training_rows(session, ring)


def _rotate_training_rows(session: Session, ring: crypto.Keyring) -> int:
    """Re-encrypt the school training rows kept with versions (``training_data.rows``) not under the current key."""
    assert ring.current is not None
    stale = sa.or_(TrainingData.rows_key_id.is_(None), TrainingData.rows_key_id != ring.current.key_id)
    query = sa.select(TrainingData).where(TrainingData.rows.is_not(None), stale).options(undefer(TrainingData.rows))
    done = 0
    for row in session.scalars(query.with_for_update()):
        plain = ring.decrypt_blob(row.rows, row.rows_key_id, "training_rows")
        row.rows, row.rows_key_id = ring.encrypt_blob(plain, "training_rows")
        done += 1
    session.commit()
    return done
