"""Reading a class file: bytes or text to a frame of raw cells (encoding, separator, header, row limit).

:func:`read_batch` reads a whole upload (at most ``MAX_ROWS`` data rows, the dashboard's and the API's
limit); :func:`read_chunks` reads a file of any size a chunk at a time, for the command line.
"""

from __future__ import annotations

import codecs
import collections
import csv
import io
import itertools
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from model import i18n
from model.errors import LONE_SURROGATE, BatchRejected
from model.i18n import tr
from model.schema.fields import _SPARE_COLUMNS, MAX_ROWS


def count_text(count: int) -> str:
    """A count of rows as read in this language (``100,000`` in English, ``100000`` in Portuguese)."""
    return f"{count:,}" if i18n.language() == i18n.ENGLISH else i18n.number(count, 0)


def _decode(data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise BatchRejected(tr("the file is not readable text (broken UTF-16)")) from exc
    if data.startswith(b"PK\x03\x04"):
        raise BatchRejected(tr("the file looks like an Excel workbook or a zip archive; save it as CSV"))
    if b"\x00" in data:
        raise BatchRejected(tr("the file is not a text file (it contains NUL bytes); upload a CSV file"))
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _to_text(data: bytes | str | Path | IO[Any]) -> str:
    if isinstance(data, Path):
        data = data.read_bytes()
    elif not isinstance(data, bytes | bytearray | memoryview | str):
        getvalue = getattr(data, "getvalue", None)
        data = getvalue() if callable(getvalue) else data.read()
    text = data if isinstance(data, str) else _decode(bytes(data))
    if "\x00" in text:
        raise BatchRejected(tr("the file is not a text file (it contains NUL characters); upload a CSV file"))
    if (found := LONE_SURROGATE.search(text)) is not None:
        line = text.count("\n", 0, found.start()) + 1
        message = tr("line {line} of the file holds a character that is not valid text "
                     "(a lone UTF-16 surrogate such as \\ud800); save the file as UTF-8", line=line)  # fmt: skip
        raise BatchRejected(message)
    return text.removeprefix("\ufeff")


def _sniff_separator(text: str) -> str:
    stripped = text.lstrip()
    header = stripped[: stripped.find("\n")] if "\n" in stripped else stripped
    return ";" if header.count(";") > header.count(",") else ","


def _header(text: str | IO[str], sep: str) -> tuple[int, list[str]]:
    """The spreadsheet row number of the header (the first non-blank record) and its names."""
    source = io.StringIO(text, newline="") if isinstance(text, str) else text
    try:
        for number, record in enumerate(csv.reader(source, delimiter=sep), start=1):
            if any(cell.strip() for cell in record):
                return number, [cell.strip() for cell in record]
    except csv.Error as exc:
        raise BatchRejected(tr("the file could not be read as CSV: {error}", error=exc)) from exc
    raise BatchRejected(tr("the file is empty"))


def _records(text: str, sep: str, width: int, limit: int) -> pd.DataFrame:
    """All records as object strings, one per spreadsheet row (header and blank lines included).

    pandas' C reader is the fast path; a record longer than ``width + _SPARE_COLUMNS`` makes it
    fail, and then the slower ``csv`` module reads the file, keeping every value of every record.
    """
    try:
        return pd.read_csv(
            io.StringIO(text), sep=sep, header=None, names=range(width + _SPARE_COLUMNS), dtype=object,
            na_filter=False, skip_blank_lines=False, index_col=False, engine="c", nrows=limit,
        )  # fmt: skip
    except pd.errors.ParserError:
        pass
    try:
        records = list(itertools.islice(csv.reader(io.StringIO(text, newline=""), delimiter=sep), limit))
    except csv.Error as exc:
        raise BatchRejected(tr("the file could not be read as CSV: {error}", error=exc)) from exc
    longest = max([width, *map(len, records)])
    return pd.DataFrame([r + [""] * (longest - len(r)) for r in records], dtype=object)


def _overlong_rows(extra: pd.DataFrame, rows: np.ndarray, width: int) -> dict[int, int]:
    """Rows with values beyond the header's columns, and how many values they hold."""
    if extra.shape[1] == 0:
        return {}
    found: dict[int, int] = {}
    for pos in np.flatnonzero((extra.to_numpy() != "").any(axis=1)):
        cells = extra.iloc[pos].tolist()
        used = [i for i, cell in enumerate(cells) if cell.strip()]
        if used:
            found[int(rows[pos])] = width + used[-1] + 1
    return found


def _blank_rows(cells: pd.DataFrame) -> np.ndarray:
    """Rows whose every cell is blank, narrowing the candidates one column at a time."""
    candidates = np.arange(len(cells))
    for j in range(cells.shape[1]):
        if not len(candidates):
            break
        candidates = candidates[(cells.iloc[candidates, j].str.strip() == "").to_numpy()]
    blank = np.zeros(len(cells), dtype=bool)
    blank[candidates] = True
    return blank


def _column_names(header: list[str]) -> list[str]:
    """The header's names (a blank one named by its position); raises when a name appears twice."""
    names = [name or f"(unnamed column {i})" for i, name in enumerate(header, start=1)]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise BatchRejected(tr("the header names these columns more than once: {names}", names=", ".join(duplicates)))
    return names


def _cells_frame(cells: pd.DataFrame, rows: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Records (already without blank ones) at spreadsheet rows ``rows`` as the frame :func:`read_batch` returns."""
    width = len(names)
    frame = cells.iloc[:, :width].set_axis(names, axis=1).set_axis(pd.Index(rows, name="row"), axis=0)
    frame.attrs["overlong_rows"] = _overlong_rows(cells.iloc[:, width:], rows, width)
    return frame


def _parse_csv(text: str, max_rows: int) -> pd.DataFrame:
    """Raw string cells indexed by spreadsheet row (``row``); ``attrs["overlong_rows"]`` lists the
    rows holding more values than the header has columns."""
    if not text.strip():
        raise BatchRejected(tr("the file is empty"))
    sep = _sniff_separator(text)
    header_row, header = _header(text, sep)
    width = len(header)
    limit = header_row + 2 * max_rows + 1
    cells = _records(text, sep, width, limit)
    if len(cells) >= limit:
        raise BatchRejected(
            tr("the file has more than {limit} data rows; split it into smaller files", limit=count_text(max_rows))
        )
    cells = cells.iloc[header_row:]
    rows = np.arange(header_row + 1, header_row + 1 + len(cells), dtype=np.int64)
    keep = ~_blank_rows(cells)
    cells, rows = cells.iloc[keep], rows[keep]
    if len(cells) > max_rows:
        raise BatchRejected(
            tr(
                "the file has {rows} data rows; at most {limit} are allowed",
                rows=count_text(len(cells)),
                limit=count_text(max_rows),
            )
        )
    return _cells_frame(cells, rows, _column_names(header))


def read_batch(data: bytes | str | Path | IO[Any], max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Read a CSV upload into a frame of raw strings, indexed by spreadsheet row number (``row``).

    ``data`` is the file's bytes, its text (a ``str`` is CSV content, not a path), a ``Path`` or a
    file object. The separator (';' or ',') is taken from the header line; quotes, a UTF-8 BOM,
    UTF-16 with BOM and cp1252/Latin-1 text are handled; blank lines are skipped (but counted).
    Raises :class:`BatchRejected` for non-text, empty or too long (``> max_rows``) files and for a
    header naming a column twice.
    """
    return _parse_csv(_to_text(data), max_rows)


STREAM_CHUNK_ROWS = 20_000  # records per chunk of read_chunks: a few tens of MB of cells, however big the file
_BLOCK_BYTES = 1 << 20
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")  # the bytes cp1252 cannot decode


def _file_encoding(path: Path) -> str:
    """The encoding :func:`_decode` picks for the file at ``path``, found in one pass over its blocks,
    with the same refusals (a workbook, NUL bytes or characters, broken UTF-16)."""
    with path.open("rb") as handle:
        head = handle.read(4)
        utf16 = head.startswith((b"\xff\xfe", b"\xfe\xff"))
        if head.startswith(b"PK\x03\x04"):
            raise BatchRejected(tr("the file looks like an Excel workbook or a zip archive; save it as CSV"))
        handle.seek(0)
        decoder = codecs.getincrementaldecoder("utf-16" if utf16 else "utf-8")()
        utf8 = cp1252 = not utf16
        for block in iter(partial(handle.read, _BLOCK_BYTES), b""):
            if utf16:
                try:
                    text = decoder.decode(block)
                except UnicodeDecodeError as exc:
                    raise BatchRejected(tr("the file is not readable text (broken UTF-16)")) from exc
                if "\x00" in text:
                    raise BatchRejected(
                        tr("the file is not a text file (it contains NUL characters); upload a CSV file")
                    )
                continue
            if b"\x00" in block:
                raise BatchRejected(tr("the file is not a text file (it contains NUL bytes); upload a CSV file"))
            if utf8:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    utf8 = False
            cp1252 = cp1252 and _CP1252_UNDEFINED.search(block) is None
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            if utf16:
                raise BatchRejected(tr("the file is not readable text (broken UTF-16)")) from exc
            utf8 = False
    return "utf-16" if utf16 else "utf-8-sig" if utf8 else "cp1252" if cp1252 else "latin-1"


def _open_text(path: Path, encoding: str) -> IO[str]:
    return path.open("r", encoding=encoding, newline="")


def _file_header(path: Path, encoding: str) -> tuple[str, int, list[str]]:
    """The separator, the header's row number and its names, from the start of the file only."""
    with _open_text(path, encoding) as handle:
        start = ""
        while block := handle.read(_BLOCK_BYTES):
            start += block
            stripped = start.lstrip()
            if stripped and "\n" in stripped:
                break
    if not start.strip():
        raise BatchRejected(tr("the file is empty"))
    sep = _sniff_separator(start)
    with _open_text(path, encoding) as handle:
        header_row, header = _header(handle, sep)
    return sep, header_row, header


def _record_chunks(
    path: Path, encoding: str, sep: str, width: int, chunk_rows: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    """The file's records as object strings, ``chunk_rows`` at a time (header and blank lines included),
    each chunk with the spreadsheet row number of its first record.

    As in :func:`_records`, pandas' C reader is the fast path; where a record is too long for it, the
    ``csv`` module reads on from the first record not yet given out.
    """
    done = 0
    try:
        with _open_text(path, encoding) as handle, pd.read_csv(
            handle, sep=sep, header=None, names=range(width + _SPARE_COLUMNS), dtype=object, na_filter=False,
            skip_blank_lines=False, index_col=False, engine="c", chunksize=chunk_rows,
        ) as reader:  # fmt: skip
            for cells in reader:
                yield done + 1, cells
                done += len(cells)
        return
    except pd.errors.ParserError:
        pass
    with _open_text(path, encoding) as handle:
        records = csv.reader(handle, delimiter=sep)
        try:
            collections.deque(itertools.islice(records, done), maxlen=0)
            while chunk := list(itertools.islice(records, chunk_rows)):
                longest = max([width, *map(len, chunk)])
                yield done + 1, pd.DataFrame([r + [""] * (longest - len(r)) for r in chunk], dtype=object)
                done += len(chunk)
        except csv.Error as exc:
            raise BatchRejected(
                tr("the file could not be read as CSV (after row {row}): {error}", row=count_text(done), error=exc)
            ) from exc


def read_chunks(path: Path, chunk_rows: int = STREAM_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """Read a class file of any size as frames like :func:`read_batch`'s, one per ``chunk_rows`` records.

    Only one chunk's cells are held at a time. Row numbers (the index, ``row``) are those of the whole
    file, blank lines are skipped (but counted), so a chunk may hold fewer rows, or none; there is no
    row limit. The encoding, separator and header are found as :func:`read_batch` finds them, and the
    same files are refused (:class:`BatchRejected`) before the first chunk is given out.
    """
    encoding = _file_encoding(path)
    sep, header_row, header = _file_header(path, encoding)
    names = _column_names(header)
    for first, cells in _record_chunks(path, encoding, sep, len(header), chunk_rows):
        rows = np.arange(first, first + len(cells), dtype=np.int64)
        data = rows > header_row
        cells, rows = cells.iloc[data], rows[data]
        keep = ~_blank_rows(cells)
        yield _cells_frame(cells.iloc[keep], rows[keep], names)
