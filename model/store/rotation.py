"""Data key rotation: re-encrypt what is stored under an old key (or in clear) with the current key.

Deploy with ``MATHSIGHT_DATA_KEY`` = the new key and ``MATHSIGHT_DATA_KEY_PREVIOUS`` = the old one
(both are readable meanwhile), run ``python -m model rotate-key``, then drop the previous key. Each
artifact is verified (SHA-256 and HMAC of its stored bytes) before it is decrypted, and re-signed
after; log inputs are rewritten in batches of ``batch_rows``, one transaction per batch, so a run
can be interrupted and repeated (rows already under the current key are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import undefer

from model.store import crypto, registry
from model.store.db import session_scope
from model.store.tables import ModelVersion, PredictionLog

BATCH_ROWS = 2_000


@dataclass(frozen=True)
class RotationResult:
    """How many artifacts and log rows were re-encrypted under key ``key_id``."""

    key_id: str
    artifacts: int
    log_rows: int


def rotate_data_key(engine: Engine, batch_rows: int = BATCH_ROWS) -> RotationResult:
    """Re-encrypt every artifact and logged input not yet under the current data key."""
    ring = crypto.keyring()
    if ring.current is None:
        raise crypto.DataKeyError("set MATHSIGHT_DATA_KEY to the new key (and MATHSIGHT_DATA_KEY_PREVIOUS to the old)")
    artifacts = _rotate_artifacts(engine, ring)
    log_rows = _rotate_inputs(engine, ring, batch_rows)
    return RotationResult(ring.current.key_id, artifacts, log_rows)


def _rotate_artifacts(engine: Engine, ring: crypto.Keyring) -> int:
    """Re-encrypt the artifacts of all versions, one version per transaction."""
    assert ring.current is not None
    with session_scope(engine) as session:
        ids = list(session.scalars(sa.select(ModelVersion.id).order_by(ModelVersion.id)))
    done = 0
    for version_id in ids:
        with session_scope(engine) as session:
            query = sa.select(ModelVersion).where(ModelVersion.id == version_id).with_for_update()
            version = session.scalars(query.options(undefer(ModelVersion.artifact))).one()
            if crypto.artifact_key_id(version.artifact) == ring.current.key_id:
                continue
            registry.verify_artifact(version)
            stored = ring.encrypt_artifact(ring.decrypt_artifact(version.artifact))
            version.artifact = stored
            version.artifact_sha256 = registry.sha256_hex(stored)
            version.artifact_hmac = registry.sign(stored)
            done += 1
    return done


def _rotate_inputs(engine: Engine, ring: crypto.Keyring, batch_rows: int) -> int:
    """Rewrite the inputs of log rows not under the current key, ``batch_rows`` per transaction."""
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
        with engine.begin() as connection:
            query = (
                sa.select(log.id, log.inputs)
                .where(log.id > last_id, log.inputs.is_not(None), stale)
                .order_by(log.id)
                .limit(batch_rows)
            )
            batch = connection.execute(query).all()
            if not batch:
                return done
            changes = [
                {"row_id": row_id, "new_inputs": ring.encrypt_inputs(ring.decrypt_inputs(inputs))}
                for row_id, inputs in batch
                if inputs is not None  # a JSON null: a rejected row without inputs
            ]
            if changes:
                connection.execute(update, changes)
        last_id, done = batch[-1][0], done + len(changes)
