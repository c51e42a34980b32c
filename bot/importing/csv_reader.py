"""Reading an EHR export as CSV records (SPEC §4), before any field is looked at.

Decoding (UTF-8 with or without a BOM, Windows-1252, UTF-16 with a BOM), the delimiter
(Excel's `sep=` line, else the commonest of comma, semicolon and tab on the header line),
header normalisation and checks, and the physical line numbers each record spans, so every
problem can name the line a person sees in a text editor.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

Source = str | Path | IO[str] | IO[bytes]

_DELIMITERS = (",", ";", "\t")  # ties go to the comma
_SEP_HINT = re.compile(r"^sep=(.)\r?\n?$")  # Excel's optional first line naming the delimiter
_COLUMN_SEPARATORS = re.compile(r"[\s-]+")
# A record running over more physical lines than this has a quote that was never closed: the
# CSV reader would swallow the following rows into one field.
MAX_RECORD_LINES = 5


class FileProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _detect_encoding(chunks: Iterable[bytes]) -> str:
    """utf-16 with a byte-order mark (Excel's "Unicode Text"); otherwise utf-8-sig when the
    whole file decodes as UTF-8, else cp1252 (Excel's "CSV" on Windows, a superset of the
    printable Latin-1)."""
    chunks = iter(chunks)
    head = next(chunks, b"")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head.split(b"\n", 1)[0]:
        raise FileProblem(
            1,
            "the file looks like UTF-16 text without a byte-order mark; save "
            'it as "CSV UTF-8" and import that',
        )
    decoders = {name: codecs.getincrementaldecoder(name)() for name in ("utf-8-sig", "cp1252")}
    line, bad_line = 1, 1
    for chunk in itertools.chain([head], chunks, [b""]):
        for name, decoder in list(decoders.items()):
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                del decoders[name]
                bad_line = line + chunk.count(b"\n", 0, error.start)
        line += chunk.count(b"\n")
        if not decoders:
            raise FileProblem(bad_line, "the file is not UTF-8 or Windows-1252 text")
    return next(iter(decoders))


class CsvFile:
    """A CSV source that can be read twice. Paths are streamed; streams are read into memory
    (the CLI passes paths; streams are for the demo and tests)."""

    def __init__(self, source: Source) -> None:
        self._path: Path | None = None
        self._text: str | None = None
        if isinstance(source, str | Path):
            self._path = Path(source)
            try:
                with self._path.open("rb") as handle:
                    self._encoding = _detect_encoding(iter(lambda: handle.read(1 << 20), b""))
            except OSError as error:
                raise FileProblem(0, f"cannot read {self._path}: {error.strerror}") from error
            return
        data = source.read()
        if isinstance(data, bytes):
            encoding = _detect_encoding([data])
            data = data.decode(encoding)
        self._text = data

    @contextmanager
    def open(self) -> Iterator[IO[str]]:
        if self._text is not None:
            yield io.StringIO(self._text, newline="")
            return
        assert self._path is not None
        with self._path.open(encoding=self._encoding, newline="") as handle:
            yield handle


Record = tuple[int, int, list[str]]  # first and last physical line, cells


def read_records(stream: IO[str]) -> tuple[list[str], int, Iterator[Record]]:
    """The header, its line, and the non-blank records with the physical lines each spans."""
    first, skipped = stream.readline().lstrip("\ufeff"), 0
    if hint := _SEP_HINT.match(first):
        first, skipped = stream.readline(), 1
    if not first.strip():
        raise FileProblem(1 + skipped, "the file is empty: the first line must be the column names")
    delimiter = hint.group(1) if hint else max(_DELIMITERS, key=first.count)
    reader = csv.reader(itertools.chain([first], stream), delimiter=delimiter)
    header = [_COLUMN_SEPARATORS.sub("_", name.strip().lower()) for name in next(reader)]
    while header and not header[-1]:
        header.pop()  # empty columns Excel keeps after the last one used

    def rows() -> Iterator[Record]:
        last = reader.line_num
        try:
            for cells in reader:
                start, last = last + 1, reader.line_num
                if any(cell.strip() for cell in cells):
                    yield start + skipped, last + skipped, cells
        except csv.Error as error:
            raise FileProblem(last + 1 + skipped, f"cannot be read as CSV ({error})") from error

    return header, 1 + skipped, rows()


def record_problem(start: int, end: int, cells: list[str], width: int) -> str | None:
    if end - start >= MAX_RECORD_LINES:
        return (
            f"a quoted value starting on this line runs on to line {end}: a closing "
            'quote (") is probably missing'
        )
    if len(cells) != width:
        return f"has {len(cells)} fields but the header has {width}"
    return None


def fit(cells: list[str], width: int) -> list[str]:
    """Drop empty trailing cells beyond the header (Excel's unused columns)."""
    if len(cells) > width and not any(cell.strip() for cell in cells[width:]):
        return cells[:width]
    return cells


def header_problems(
    header: list[str], columns: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[str]:
    """Duplicate, missing and unknown columns; `optional` columns may be left out."""
    problems = []
    if duplicates := sorted({name for name in header if header.count(name) > 1}):
        problems.append(f"column(s) appear more than once: {', '.join(duplicates)}")
    if missing := [name for name in columns if name not in header]:
        problems.append(f"missing column(s): {', '.join(missing)}")
    known = (*columns, *optional)
    if unknown := [name or "(a column with no name)" for name in header if name not in known]:
        problems.append(
            f"unknown column(s): {', '.join(unknown)}; the columns are: {', '.join(known)}"
        )
    return problems
