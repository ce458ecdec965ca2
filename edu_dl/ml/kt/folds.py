"""The k-fold protocols of the evaluation command, on dataset files (no database).

``akt``: the AKT repository's chunk files ``*_test{1..5}.csv[.gz]`` (plus
``*_train_only_leftover.csv[.gz]``, which joins every training set). Fold k tests on chunk k,
validates on chunk k+1 (5 wraps to 1) and trains on the other three.
``csv``: one file in the import format, split by student into five seeded chunks, then the same
protocol.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from edu_dl.ml.kt.formats import (
    FormatError,
    detect_akt_lines,
    open_text,
    read_blocks,
    read_csv_answers,
)
from edu_dl.ml.kt.pipeline import RawSequence

CHUNKS = 5


@dataclass
class FoldData:
    fold: int
    train: list[RawSequence]
    validation: list[RawSequence]
    test: list[RawSequence]


def read_block_file(path: Path, lines_per_student: int | None = None) -> list[RawSequence]:
    with open_text(path) as handle:
        lines = handle.readlines()
    size = lines_per_student or detect_akt_lines(lines[:400])
    sequences = []
    for block in read_blocks(lines, lines_per_student=size):
        sequences.append(
            RawSequence(
                key=f"{path.name}:{block.student}",
                skills=block.skills,
                correct=block.correct,
                items=block.items,
            )
        )
    return sequences


def _chunk_files(directory: Path) -> tuple[dict[int, Path], list[Path]]:
    chunks: dict[int, Path] = {}
    leftovers: list[Path] = []
    for path in sorted(directory.iterdir()):
        match = re.search(r"_test(\d+)\.csv(\.gz)?$", path.name)
        if match:
            chunks[int(match.group(1))] = path
        elif re.search(r"_train_only_leftover\.csv(\.gz)?$", path.name):
            leftovers.append(path)
    return chunks, leftovers


def akt_chunks(
    directory: Path, lines_per_student: int | None = None
) -> tuple[dict[int, list[RawSequence]], list[RawSequence]]:
    chunks, leftovers = _chunk_files(directory)
    missing = [k for k in range(1, CHUNKS + 1) if k not in chunks]
    if missing:
        raise FileNotFoundError(
            f"{directory} lacks chunk file(s) *_test{{{','.join(map(str, missing))}}}.csv[.gz]"
        )
    data = {k: read_block_file(path, lines_per_student) for k, path in chunks.items()}
    extra = [s for path in leftovers for s in read_block_file(path, lines_per_student)]
    return data, extra


def csv_chunks(path: Path, seed: int) -> dict[int, list[RawSequence]]:
    """Students of an import-format csv, in time order, split into five seeded chunks."""
    answers: dict[str, list] = defaultdict(list)
    with open_text(path) as handle:
        for answer in read_csv_answers(handle):
            if isinstance(answer, FormatError):
                raise answer
            answers[answer.student].append(answer)
    chunks: dict[int, list[RawSequence]] = {k: [] for k in range(1, CHUNKS + 1)}
    for student, rows in answers.items():
        rows.sort(key=lambda a: (a.timestamp, a.position))
        digest = hashlib.sha256(f"{seed}:{student}".encode()).digest()
        chunk = int.from_bytes(digest[:8], "big") % CHUNKS + 1
        chunks[chunk].append(
            RawSequence(
                key=student,
                skills=[a.skills for a in rows],
                correct=[a.correct for a in rows],
                items=[a.item for a in rows],
            )
        )
    return chunks


def fold(
    chunks: dict[int, list[RawSequence]], k: int, extra_train: list[RawSequence] | None = None
) -> FoldData:
    validation_chunk = k % CHUNKS + 1
    train = [
        s for c, seqs in sorted(chunks.items()) if c not in (k, validation_chunk) for s in seqs
    ]
    return FoldData(
        fold=k,
        train=train + list(extra_train or []),
        validation=chunks[validation_chunk],
        test=chunks[k],
    )
