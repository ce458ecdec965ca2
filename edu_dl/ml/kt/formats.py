"""Readers of the usual knowledge-tracing file formats, streaming, with line numbers in errors.

Pure Python (no torch): the import service and the evaluation command share these readers, so a
file means the same thing to both.

- ``akt``: per student a block of 3 lines (header / skill or question ids / 0-1 correctness) or
  of 4 lines (header / problem ids / skill ids / correctness), as in the AKT repository's fold
  files. The header is a student id (``index,original_id`` or one id) or the sequence length.
- ``dkt``: the DKT paper's builder files: 3 lines per student (length / skill ids / correctness).
- ``csv``: a header ``student,item,skills,correct,timestamp`` (skills separated by ``;``), with
  optional ``attempt,duration_s`` columns; one answer per row.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, overload

CSV_REQUIRED = ("student", "item", "skills", "correct", "timestamp")
CSV_OPTIONAL = ("attempt", "duration_s")
TRUE_WORDS = {"1", "true", "yes", "correct"}
FALSE_WORDS = {"0", "false", "no", "incorrect", "wrong"}


class FormatError(ValueError):
    """A line of the file cannot be read; ``line`` is 1-based."""

    def __init__(self, line: int, reason: str):
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class Answer:
    """One answer as read from a file (ids are the file's own strings)."""

    student: str
    item: str | None
    skills: tuple[str, ...]
    correct: int
    line: int
    position: int  # 0-based position in the student's sequence (or row number for csv)
    timestamp: datetime | None = None
    attempt: int | None = None
    duration_s: float | None = None


@dataclass
class StudentBlock:
    """One student's answers from a block-per-student file, in order."""

    student: str
    items: list[str] | None
    skills: list[tuple[str, ...]]
    correct: list[int]
    first_line: int
    flags_line: int


def open_text(path: str | Path) -> io.TextIOBase:
    """Open a text file, transparently un-gzipping ``.gz`` files."""
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _tokens(text: str) -> list[str]:
    return [token.strip() for token in text.strip().split(",") if token.strip()]


def _flags(tokens: list[str], line: int) -> list[int]:
    values = []
    for token in tokens:
        if token not in ("0", "1"):
            raise FormatError(line, f"correctness must be 0 or 1, not {token!r}")
        values.append(int(token))
    return values


def _looks_like_flags(text: str) -> bool:
    tokens = _tokens(text)
    return bool(tokens) and all(t in ("0", "1") for t in tokens)


def detect_akt_lines(lines: list[str]) -> int:
    """3 or 4 lines per student, judged from the first blocks of the file.

    In a 4-line file every 4th line is 0/1 flags and the 3rd is ids; in a 3-line file every 3rd
    line is flags. Raises ValueError when the file fits neither or both.
    """
    content = [line for line in lines if line.strip()]

    def fits(size: int) -> bool:
        blocks = [content[i : i + size] for i in range(0, min(len(content), size * 20), size)]
        if not blocks or len(blocks[-1]) < size:
            blocks = blocks[:-1]
        if not blocks:
            return False
        for block in blocks:
            lengths = {len(_tokens(row)) for row in block[1:]}
            if len(lengths) != 1 or not _looks_like_flags(block[-1]):
                return False
        return True

    three, four = fits(3), fits(4)
    if three and not four:
        return 3
    if four and not three:
        return 4
    raise ValueError(
        "cannot tell whether the file has 3 or 4 lines per student; pass --akt-lines 3 or 4"
    )


def _student_key(header: str, length: int, ordinal: int, line: int) -> str:
    tokens = _tokens(header)
    if not tokens:
        raise FormatError(line, "empty header line where a student id or length was expected")
    if len(tokens) == 1 and tokens[0].isdigit() and int(tokens[0]) == length:
        return f"#{ordinal}"  # the header is the length: the file names no student
    return tokens[-1]  # "index,original_id": the original id identifies the student


def _block(buffer: list[tuple[int, str]], *, lines_per_student: int, ordinal: int) -> StudentBlock:
    (header_line, header), *rest = buffer
    rows = [(line, _tokens(text)) for line, text in rest]
    flags_line, flag_tokens = rows[-1]
    correct = _flags(flag_tokens, flags_line)
    for line, tokens in rows[:-1]:
        if len(tokens) != len(correct):
            raise FormatError(
                line,
                f"{len(tokens)} ids but {len(correct)} correctness flags on line {flags_line}",
            )
    if lines_per_student == 4:
        items = rows[0][1]
        skills = [(s,) for s in rows[1][1]]
    else:
        items = None
        skills = [(s,) for s in rows[0][1]]
    return StudentBlock(
        student=_student_key(header, len(correct), ordinal, header_line),
        items=items,
        skills=skills,
        correct=correct,
        first_line=header_line,
        flags_line=flags_line,
    )


@overload
def read_blocks(
    lines: Iterable[str],
    *,
    lines_per_student: int,
    drop_single: bool = ...,
    on_error: Literal["raise"] = ...,
) -> Iterator[StudentBlock]: ...


@overload
def read_blocks(
    lines: Iterable[str],
    *,
    lines_per_student: int,
    drop_single: bool = ...,
    on_error: Literal["yield"],
) -> Iterator[StudentBlock | FormatError]: ...


def read_blocks(
    lines: Iterable[str],
    *,
    lines_per_student: int,
    drop_single: bool = False,
    on_error: str = "raise",
) -> Iterator[StudentBlock | FormatError]:
    """Student blocks from an ``akt`` or ``dkt`` file (3 or 4 lines per student).

    A block that cannot be read raises its FormatError; with ``on_error="yield"`` the error is
    yielded in the block's place and reading goes on with the next block (as
    :func:`read_csv_answers` does), so a caller can skip bad students. Blocks are counted in
    both cases, so a header that is the sequence length names the same student either way.
    """
    if lines_per_student not in (3, 4):
        raise ValueError("lines_per_student must be 3 or 4")
    if on_error not in ("raise", "yield"):
        raise ValueError("on_error must be 'raise' or 'yield'")
    buffer: list[tuple[int, str]] = []
    ordinal = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        buffer.append((number, raw))
        if len(buffer) < lines_per_student:
            continue
        ordinal += 1
        try:
            block = _block(buffer, lines_per_student=lines_per_student, ordinal=ordinal)
        except FormatError as error:
            if on_error == "raise":
                raise
            yield error
            continue
        finally:
            buffer = []
        if drop_single and len(block.correct) < 2:
            continue
        yield block
    if buffer:
        error = FormatError(
            buffer[0][0],
            f"the file ends inside a student block ({len(buffer)} of {lines_per_student} lines)",
        )
        if on_error == "raise":
            raise error
        yield error


def block_answers(block: StudentBlock) -> list[Answer]:
    """The answers of a block, each with the line number of its correctness flags."""
    return [
        Answer(
            student=block.student,
            item=None if block.items is None else block.items[position],
            skills=block.skills[position],
            correct=block.correct[position],
            line=block.flags_line,
            position=position,
        )
        for position in range(len(block.correct))
    ]


def _parse_timestamp(text: str, line: int) -> datetime:
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FormatError(line, f"timestamp {text!r} is not ISO 8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # documented: a time without a zone is UTC
    return moment


def _parse_correct(text: str, line: int) -> int:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return 1
    if word in FALSE_WORDS:
        return 0
    raise FormatError(line, f"correct must be 0/1 (or true/false), not {text!r}")


def read_csv_answers(handle: Iterable[str]) -> Iterator[Answer | FormatError]:
    """Answers of a ``csv`` file; a bad row is yielded as its FormatError so the caller decides
    whether to stop or to skip it. A bad header raises at once."""
    reader = csv.reader(handle)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise FormatError(1, "the file is empty (expected a header line)") from None
    if header:  # spreadsheet programs start UTF-8 files with a byte-order mark
        header[0] = header[0].removeprefix("\ufeff")
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise FormatError(1, f"the header lacks column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in CSV_REQUIRED + CSV_OPTIONAL]
    if unknown:
        raise FormatError(1, f"unknown column(s) {', '.join(unknown)}")
    index = {name: header.index(name) for name in header}
    for row_number, row in enumerate(reader, start=1):
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        try:
            if len(row) != len(header):
                raise FormatError(line, f"{len(row)} fields, the header has {len(header)}")
            student = row[index["student"]].strip()
            if not student:
                raise FormatError(line, "student is empty")
            item = row[index["item"]].strip() or None
            skills = tuple(s.strip() for s in row[index["skills"]].split(";") if s.strip())
            answer = Answer(
                student=student,
                item=item,
                skills=skills,
                correct=_parse_correct(row[index["correct"]], line),
                line=line,
                position=row_number,
                timestamp=_parse_timestamp(row[index["timestamp"]], line),
            )
            if "attempt" in index and row[index["attempt"]].strip():
                try:
                    answer.attempt = int(row[index["attempt"]])
                except ValueError:
                    raise FormatError(
                        line, f"attempt {row[index['attempt']]!r} is not a whole number"
                    ) from None
                if answer.attempt < 0:
                    raise FormatError(line, "attempt is negative")
            if "duration_s" in index and row[index["duration_s"]].strip():
                try:
                    answer.duration_s = float(row[index["duration_s"]])
                except ValueError:
                    raise FormatError(
                        line, f"duration_s {row[index['duration_s']]!r} is not a number"
                    ) from None
                if not math.isfinite(answer.duration_s):
                    raise FormatError(
                        line, f"duration_s {row[index['duration_s']]!r} is not a finite number"
                    )
                if answer.duration_s < 0:
                    raise FormatError(line, "duration_s is negative")
        except FormatError as error:
            yield error
            continue
        yield answer
