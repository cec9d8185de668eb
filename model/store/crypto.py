"""Encryption at rest: AES-256-GCM under ``MATHSIGHT_DATA_KEY`` for model artifacts, logged inputs and
the short texts teachers type (student ids, intervention notes).

With a data key (base64 of 32 random bytes; make one with ``generate_key()``), model artifacts are
stored as ``MAGIC + key id + nonce + ciphertext`` and the ``inputs`` of each prediction log row as
``{"enc": "v1:<key id>:<base64 nonce + ciphertext>"}``. The key id (8 hex characters of a SHA-256 of
the key) says which key to decrypt with, so rows written before and after a rotation both stay
readable while ``MATHSIGHT_DATA_KEY_PREVIOUS`` holds the old key, until ``python -m model rotate-key``
has re-encrypted them. Data written without a key stays readable after a key is set. Short texts are
stored as base64 of ``nonce + ciphertext`` with the key id in a column of its own (NULL: in clear).

The registry's SHA-256/HMAC cover the stored (encrypted) bytes, so integrity is checked before
anything is decrypted or unpickled; GCM's tag is a second check. Without a key nothing is encrypted
and the first use logs, once per process, that data at rest is not encrypted.

The trade-off for monitoring: encrypted inputs cannot be read by SQL, so drift counts come from a
bounded, decrypted recent sample (``model.monitoring.samples``) instead of SQL JSON extraction
whenever rows are encrypted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from model.errors import UserError
from model.settings import Settings

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ID_CHARS = 8
ARTIFACT_MAGIC = b"MSENC1"
INPUTS_VERSION = "v1"
ENC_FIELD = "enc"
_ARTIFACT_AAD = b"mathsight/artifact"
_INPUTS_AAD = b"mathsight/inputs"
TEXT_AADS = {"student_ref": b"mathsight/student-ref", "note": b"mathsight/intervention-note"}
BLOB_AADS = {"training_rows": b"mathsight/training-rows"}

logger = logging.getLogger("mathsight.security")
_warned = False
_warn_lock = threading.Lock()


class DataKeyError(UserError):
    """A configured data key is not base64 of 32 bytes."""


class DecryptionError(RuntimeError):
    """Encrypted data could not be decrypted: unknown key id, or the ciphertext was altered."""


@dataclass(frozen=True)
class DataKey:
    """One AES-256-GCM key and its public id."""

    key_id: str
    aead: AESGCM

    @classmethod
    def from_text(cls, text: str, setting: str = "MATHSIGHT_DATA_KEY") -> DataKey:
        """Parse base64 (standard or URL-safe) of exactly 32 bytes; raise `DataKeyError` naming ``setting``."""
        raw = text.strip()
        try:
            key = base64.b64decode(raw.replace("-", "+").replace("_", "/") + "=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise DataKeyError(
                f"{setting} must be base64 of {KEY_BYTES} random bytes "
                "(make one with `python -m model rotate-key --generate`)"
            )
        return cls(key_id_of(key), AESGCM(key))

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        """``nonce + ciphertext + tag`` of ``plaintext`` under a fresh random nonce."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self.aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes) -> bytes:
        """The plaintext of :meth:`seal`'s output; raises `DecryptionError` when it was altered."""
        try:
            return self.aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError) as error:
            raise DecryptionError(f"data encrypted with key {self.key_id} failed authentication") from error


def key_id_of(key: bytes) -> str:
    """The public id of a key: the first 8 hex characters of a domain-separated SHA-256."""
    return hashlib.sha256(b"mathsight-data-key-id:" + key).hexdigest()[:KEY_ID_CHARS]


def generate_key() -> str:
    """A new random data key, base64 encoded, for ``MATHSIGHT_DATA_KEY``."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


@dataclass(frozen=True)
class Keyring:
    """The key new data is encrypted with (None: no encryption) and the keys old data may use."""

    current: DataKey | None
    previous: tuple[DataKey, ...] = ()

    @property
    def encrypts(self) -> bool:
        return self.current is not None

    def find(self, key_id: str) -> DataKey:
        """The key with ``key_id``; raises `DecryptionError` when neither configured key has it."""
        for key in (self.current, *self.previous):
            if key is not None and key.key_id == key_id:
                return key
        raise DecryptionError(
            f"data was encrypted with key {key_id}, which is neither MATHSIGHT_DATA_KEY nor MATHSIGHT_DATA_KEY_PREVIOUS"
        )

    # ------------------------------------------------------------------ artifacts
    def encrypt_artifact(self, blob: bytes) -> bytes:
        """The bytes to store for an artifact: encrypted under the current key, or ``blob`` as is."""
        if self.current is None:
            return blob
        return ARTIFACT_MAGIC + self.current.key_id.encode("ascii") + self.current.seal(blob, _ARTIFACT_AAD)

    def decrypt_artifact(self, stored: bytes) -> bytes:
        """The serialized artifact from its stored bytes (plain artifacts pass through)."""
        key_id = artifact_key_id(stored)
        if key_id is None:
            return bytes(stored)
        body = bytes(stored[len(ARTIFACT_MAGIC) + KEY_ID_CHARS :])
        return self.find(key_id).open(body, _ARTIFACT_AAD)

    # ------------------------------------------------------------------ log inputs
    def encrypt_inputs(self, inputs: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """The JSON value to store for a row's inputs: ``{"enc": ...}`` under the current key, or as is."""
        if inputs is None or self.current is None:
            return None if inputs is None else dict(inputs)
        plaintext = orjson.dumps(inputs, default=_plain, option=orjson.OPT_SERIALIZE_NUMPY)
        sealed = base64.b64encode(self.current.seal(plaintext, _INPUTS_AAD)).decode("ascii")
        return {ENC_FIELD: f"{INPUTS_VERSION}:{self.current.key_id}:{sealed}"}

    def decrypt_inputs(self, stored: Mapping[str, Any] | None) -> dict[str, Any] | None:
        """A row's inputs from their stored JSON value (plain values pass through)."""
        key_id = inputs_key_id(stored)
        if key_id is None:
            return None if stored is None else dict(stored)
        sealed = base64.b64decode(str(stored[ENC_FIELD]).split(":", 2)[2])  # type: ignore[index]
        return json.loads(self.find(key_id).open(sealed, _INPUTS_AAD))

    # ------------------------------------------------------------------ short texts (student ids, notes)
    def encrypt_text(self, text: str, purpose: str) -> tuple[str, str | None]:
        """``(stored text, key id)``: base64 of nonce + ciphertext under the current key, or ``(text, None)``
        in clear without a key. ``purpose`` (a key of ``TEXT_AADS``) binds the value to its column."""
        if self.current is None:
            return text, None
        sealed = self.current.seal(text.encode("utf-8"), TEXT_AADS[purpose])
        return base64.b64encode(sealed).decode("ascii"), self.current.key_id

    def decrypt_text(self, stored: str, key_id: str | None, purpose: str) -> str:
        """The text of :meth:`encrypt_text`'s output (``key_id`` None: stored in clear)."""
        if key_id is None:
            return stored
        return self.find(key_id).open(base64.b64decode(stored), TEXT_AADS[purpose]).decode("utf-8")

    # ------------------------------------------------------------------ blobs (a version's school training rows)
    def encrypt_blob(self, blob: bytes, purpose: str) -> tuple[bytes, str | None]:
        """``(stored bytes, key id)``: nonce + ciphertext under the current key, or ``(blob, None)`` without a key."""
        if self.current is None:
            return blob, None
        return self.current.seal(blob, BLOB_AADS[purpose]), self.current.key_id

    def decrypt_blob(self, stored: bytes, key_id: str | None, purpose: str) -> bytes:
        """The bytes of :meth:`encrypt_blob`'s output (``key_id`` None: stored in clear)."""
        if key_id is None:
            return bytes(stored)
        return self.find(key_id).open(bytes(stored), BLOB_AADS[purpose])


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else str(value)


def artifact_key_id(stored: bytes) -> str | None:
    """The id of the key an artifact is encrypted with, or None for a plain artifact."""
    if bytes(stored[: len(ARTIFACT_MAGIC)]) != ARTIFACT_MAGIC:
        return None
    return bytes(stored[len(ARTIFACT_MAGIC) : len(ARTIFACT_MAGIC) + KEY_ID_CHARS]).decode("ascii", "replace")


def inputs_key_id(stored: Mapping[str, Any] | None) -> str | None:
    """The id of the key a row's inputs are encrypted with, or None for plain inputs."""
    if not isinstance(stored, Mapping) or set(stored) != {ENC_FIELD}:
        return None
    version, key_id, _ = str(stored[ENC_FIELD]).split(":", 2)
    if version != INPUTS_VERSION:
        raise DecryptionError(f"unknown encrypted inputs format {version!r}")
    return key_id


@lru_cache(maxsize=8)
def _keyring(data_key: str, data_key_previous: str) -> Keyring:
    current = DataKey.from_text(data_key) if data_key.strip() else None
    previous = (
        (DataKey.from_text(data_key_previous, "MATHSIGHT_DATA_KEY_PREVIOUS"),) if data_key_previous.strip() else ()
    )
    return Keyring(current, previous)


def keyring(settings: Settings) -> Keyring:
    """The keys of ``settings``; without ``MATHSIGHT_DATA_KEY`` logs once that data at rest is not encrypted."""
    global _warned
    ring = _keyring(settings.data_key, settings.data_key_previous)
    if ring.current is None and not _warned:
        with _warn_lock:
            if not _warned:
                _warned = True
                logger.warning(
                    "data at rest is not encrypted: model artifacts and logged inputs are stored in clear; "
                    "set MATHSIGHT_DATA_KEY (see SECURITY.md)"
                )
    return ring
