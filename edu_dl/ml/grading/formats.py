"""Graded-text datasets read into one shape, :class:`GradedText`, for evaluating graders.

Three formats are known by name (``read_dataset("asap-sas", path)``):

- ``asap-aes``: the ASAP essay-scoring release (8 prompts) with the five NEA folds;
- ``asap-sas``: the ASAP short-answer release (10 sets), train file plus public leaderboard;
- ``csv``: our own file, one graded response a row, for datasets collected elsewhere.

Every reader checks the whole file and raises :class:`DatasetError` naming the file, line and
column of the first problem. No row is ever dropped, merged or repaired: a grader evaluated on a
silently shortened dataset reports figures that cannot be compared with anyone else's. The ASAP
TSVs are read with quoting off because their essays hold unbalanced quotes; default CSV quoting
merges rows there (12,976 essays instead of 12,978).
"""

from __future__ import annotations

import csv
import gzip
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

SPLITS = ("train", "dev", "test")

# Official ASAP ranges of ``domain1_score`` per essay set (the rubric's, not the observed ones).
ASAP_AES_SCORE_RANGES: dict[str, tuple[float, float]] = {
    "1": (2.0, 12.0),
    "2": (1.0, 6.0),
    "3": (0.0, 3.0),
    "4": (0.0, 3.0),
    "5": (0.0, 4.0),
    "6": (0.0, 4.0),
    "7": (0.0, 30.0),
    "8": (0.0, 60.0),
}
ASAP_SAS_SCORE_RANGES: dict[str, tuple[float, float]] = {
    str(essay_set): (0.0, 3.0 if essay_set in (1, 2, 5, 6) else 2.0) for essay_set in range(1, 11)
}

ASAP_AES_ESSAYS = "training_set_rel3.utf8.tsv.gz"
ASAP_SAS_TRAIN = "train.tsv.gz"
ASAP_SAS_TEST = "public_leaderboard_rel_2.tsv.gz"
ASAP_SAS_TEST_SCORES = "public_leaderboard_solution.csv"
GRADED_CSV_COLUMNS = (
    "item_id",
    "question",
    "reference_answer",
    "response",
    "score",
    "min_score",
    "max_score",
    "split",
)


@dataclass(frozen=True)
class GradedText:
    """One scored response to one item (question, prompt or essay set)."""

    row: int  # 0-based position among the file's data rows (the test file's for asap-sas test)
    item_id: str
    question: str
    reference_answer: str
    response: str
    score: float
    min_score: float
    max_score: float
    split: str  # "train" | "test" (| "dev" for asap-aes folds)


class DatasetError(ValueError):
    """A dataset file that cannot be read as it stands; the message says where and why."""

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        place = [str(path)] if path is not None else []
        if line is not None:
            place.append(f"line {line}")
        if column is not None:
            place.append(f"column {column!r}")
        super().__init__(f"{', '.join(place)}: {message}" if place else message)


# --- reading helpers ---------------------------------------------------------------------------


def _open_text(path: Path) -> IO[str]:
    """Open a text file, gzipped when its name says so; a BOM is dropped if there is one."""
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
        return path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise DatasetError("file not found", path=path) from None
    except IsADirectoryError:
        raise DatasetError("is a directory, not a file", path=path) from None


@dataclass(frozen=True)
class _Record:
    line: int  # 1-based physical line on which the record starts
    fields: dict[str, str]


def _records(
    path: Path, *, delimiter: str, quoting: int, required: Iterable[str], exact: bool = False
) -> Iterator[_Record]:
    """Yield the data records of a delimited file as column -> value, with their line numbers.

    The header must hold every ``required`` column (only those, in order, when ``exact``);
    every record must have as many fields as the header. Blank lines hold no record and are
    passed over.
    """
    required = tuple(required)
    with _open_text(path) as stream:
        reader = csv.reader(stream, delimiter=delimiter, quoting=quoting, strict=True)
        try:
            header = next(reader, None)
            if header is None:
                raise DatasetError("empty file, expected a header line", path=path, line=1)
            missing = [name for name in required if name not in header]
            if missing:
                raise DatasetError(
                    f"header lacks column(s) {', '.join(missing)} (found: {', '.join(header)})",
                    path=path,
                    line=1,
                    column=missing[0],
                )
            if exact and tuple(header) != required:
                raise DatasetError(
                    f"expected header {', '.join(required)}, found {', '.join(header)}",
                    path=path,
                    line=1,
                )
            duplicated = sorted({name for name in header if header.count(name) > 1})
            if duplicated:
                raise DatasetError(
                    f"header repeats column(s) {', '.join(duplicated)}", path=path, line=1
                )
            end_of_previous = reader.line_num
            for fields in reader:
                line = end_of_previous + 1
                end_of_previous = reader.line_num
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise DatasetError(
                        f"expected {len(header)} fields, found {len(fields)}", path=path, line=line
                    )
                yield _Record(line, dict(zip(header, fields, strict=True)))
        except csv.Error as error:
            raise DatasetError(str(error), path=path, line=reader.line_num) from None
        except UnicodeDecodeError as error:
            raise DatasetError(
                f"not UTF-8 ({error.reason}), at or after this line",
                path=path,
                line=reader.line_num + 1,
            ) from None
        except (gzip.BadGzipFile, EOFError) as error:
            raise DatasetError(f"not a complete gzip file ({error})", path=path) from None


def _tsv_records(path: Path, required: Iterable[str]) -> Iterator[_Record]:
    return _records(path, delimiter="\t", quoting=csv.QUOTE_NONE, required=required, exact=True)


def _number(record: _Record, column: str, path: Path) -> float:
    value = record.fields[column]
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise DatasetError(f"{value!r} is not a number", path=path, line=record.line, column=column)
    return number


def _score_in_range(
    record: _Record, column: str, path: Path, score_range: tuple[float, float]
) -> float:
    score = _number(record, column, path)
    low, high = score_range
    if not low <= score <= high:
        raise DatasetError(
            f"score {record.fields[column]!r} is outside {low:g}-{high:g}",
            path=path,
            line=record.line,
            column=column,
        )
    return score


def _known_item(
    record: _Record, column: str, path: Path, score_ranges: dict[str, tuple[float, float]]
) -> str:
    item_id = record.fields[column]
    if item_id not in score_ranges:
        raise DatasetError(
            f"unknown set {item_id!r} (expected one of {', '.join(score_ranges)})",
            path=path,
            line=record.line,
            column=column,
        )
    return item_id


def _strip_surrounding_quotes(text: str) -> str:
    """Drop the one pair of double quotes that the original Kaggle export put around a text.

    Only a balanced outer pair is removed; anything inside (``""`` included) stays as written.
    """
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def _unique_id(record: _Record, column: str, path: Path, seen: dict[str, int]) -> str:
    identifier = record.fields[column]
    if identifier in seen:
        raise DatasetError(
            f"id {identifier!r} already appears on line {seen[identifier]}",
            path=path,
            line=record.line,
            column=column,
        )
    seen[identifier] = record.line
    return identifier


# --- ASAP-AES ----------------------------------------------------------------------------------

_ASAP_AES_COLUMNS = (
    "essay_id",
    "essay_set",
    "essay",
    "rater1_domain1",
    "rater2_domain1",
    "rater3_domain1",
    "domain1_score",
    "rater1_domain2",
    "rater2_domain2",
    "domain2_score",
    *(f"rater{rater}_trait{trait}" for rater in (1, 2, 3) for trait in range(1, 7)),
)


@dataclass(frozen=True)
class _AsapAesEssays:
    essays: list[GradedText]  # in file order, ``split`` left empty
    essay_ids: list[str]  # essay_ids[i] belongs to essays[i]
    lines: list[int]  # the line of the TSV that holds essays[i]


def _read_asap_aes_essays(path: Path) -> _AsapAesEssays:
    """Every essay of the TSV in file order, with its essay id and line."""
    essays_path = path / ASAP_AES_ESSAYS
    prompts = {essay_set: _read_prompt(path, essay_set) for essay_set in ASAP_AES_SCORE_RANGES}
    essays: list[GradedText] = []
    essay_ids: list[str] = []
    lines: list[int] = []
    seen: dict[str, int] = {}
    for record in _tsv_records(essays_path, _ASAP_AES_COLUMNS):
        lines.append(record.line)
        essay_ids.append(_unique_id(record, "essay_id", essays_path, seen))
        essay_set = _known_item(record, "essay_set", essays_path, ASAP_AES_SCORE_RANGES)
        min_score, max_score = ASAP_AES_SCORE_RANGES[essay_set]
        score_range = (min_score, max_score)
        essays.append(
            GradedText(
                row=len(essays),
                item_id=essay_set,
                question=prompts[essay_set],
                reference_answer="",
                response=_strip_surrounding_quotes(record.fields["essay"]),
                score=_score_in_range(record, "domain1_score", essays_path, score_range),
                min_score=min_score,
                max_score=max_score,
                split="",
            )
        )
    return _AsapAesEssays(essays, essay_ids, lines)


def _read_prompt(path: Path, essay_set: str) -> str:
    prompt_path = path / "prompts" / f"prompt{essay_set}.txt"
    try:
        return prompt_path.read_text(encoding="utf-8-sig").strip()
    except FileNotFoundError:
        raise DatasetError("prompt file not found", path=prompt_path) from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"not UTF-8 ({error.reason})", path=prompt_path) from None


def _read_fold_splits(path: Path, fold: int) -> dict[str, str]:
    """Essay id -> split name for one NEA fold; an id listed twice is an error."""
    folds_path = path / "nea_folds"
    fold_path = folds_path / f"fold_{fold}"
    if not fold_path.is_dir():
        available = sorted(
            child.name.removeprefix("fold_")
            for child in folds_path.glob("fold_*")
            if child.is_dir()
        )
        raise DatasetError(
            f"no fold {fold} (available: {', '.join(available) or 'none'})", path=fold_path
        )
    split_of: dict[str, str] = {}
    where: dict[str, tuple[Path, int]] = {}
    for split in SPLITS:
        ids_path = fold_path / f"{split}_ids.txt"
        with _open_text(ids_path) as stream:
            for line_number, line in enumerate(stream, start=1):
                essay_id = line.strip()
                if not essay_id:
                    continue
                if essay_id in where:
                    first_path, first_line = where[essay_id]
                    raise DatasetError(
                        f"essay id {essay_id!r} already listed in {first_path} line {first_line}",
                        path=ids_path,
                        line=line_number,
                    )
                where[essay_id] = (ids_path, line_number)
                split_of[essay_id] = split
    return split_of


def _assign_fold(path: Path, fold: int, essays: _AsapAesEssays) -> list[GradedText]:
    split_of = _read_fold_splits(path, fold)
    essays_path = path / ASAP_AES_ESSAYS
    unlisted = [
        index for index, essay_id in enumerate(essays.essay_ids) if essay_id not in split_of
    ]
    if unlisted:
        first = unlisted[0]
        raise DatasetError(
            f"essay id {essays.essay_ids[first]!r} is in none of fold {fold}'s id lists"
            f" ({len(unlisted)} essays unlisted)",
            path=essays_path,
            line=essays.lines[first],
            column="essay_id",
        )
    unknown = split_of.keys() - set(essays.essay_ids)
    if unknown:
        raise DatasetError(
            f"fold {fold} lists {len(unknown)} essay id(s) absent from {essays_path},"
            f" e.g. {min(unknown, key=_natural_order)!r}",
            path=path / "nea_folds" / f"fold_{fold}",
        )
    return [
        replace(essay, split=split_of[essay_id])
        for essay, essay_id in zip(essays.essays, essays.essay_ids, strict=True)
    ]


def _natural_order(identifier: str) -> tuple[int, str]:
    return (int(identifier), "") if identifier.isdigit() else (0, identifier)


def read_asap_aes_folds(path: Path, folds: Iterable[int]) -> dict[int, list[GradedText]]:
    """All ASAP-AES essays once per requested NEA fold, parsing the essay file a single time.

    Each fold's list holds every essay in file order, with ``split`` set from that fold's
    ``train/dev/test_ids.txt``; the essays and prompts are shared, only the split differs.
    """
    path = Path(path)
    essays = _read_asap_aes_essays(path)
    return {fold: _assign_fold(path, fold, essays) for fold in folds}


def read_asap_aes(path: Path, fold: int) -> list[GradedText]:
    """The 12,978 ASAP-AES essays of ``path`` (the ``asap_aes`` directory), split by NEA fold."""
    return read_asap_aes_folds(path, [fold])[fold]


# --- ASAP-SAS ----------------------------------------------------------------------------------


def _read_asap_sas_gold(path: Path) -> dict[str, tuple[_Record, str]]:
    """Test id -> (its record in the solution file, its essay set)."""
    gold: dict[str, tuple[_Record, str]] = {}
    seen: dict[str, int] = {}
    required = ("id", "essay_set", "essay_score")
    for record in _records(path, delimiter=",", quoting=csv.QUOTE_MINIMAL, required=required):
        identifier = _unique_id(record, "id", path, seen)
        gold[identifier] = (record, _known_item(record, "essay_set", path, ASAP_SAS_SCORE_RANGES))
    return gold


def read_asap_sas(path: Path) -> list[GradedText]:
    """ASAP-SAS train responses (split "train") then public-leaderboard ones (split "test").

    Scores are ``Score1`` for train and the solution file's ``essay_score`` for test. Every
    test response must have exactly one gold score and every gold score a test response.
    """
    path = Path(path)
    train_path = path / ASAP_SAS_TRAIN
    responses: list[GradedText] = []
    seen: dict[str, int] = {}
    for row, record in enumerate(
        _tsv_records(train_path, ("Id", "EssaySet", "Score1", "Score2", "EssayText"))
    ):
        _unique_id(record, "Id", train_path, seen)
        essay_set = _known_item(record, "EssaySet", train_path, ASAP_SAS_SCORE_RANGES)
        score = _score_in_range(record, "Score1", train_path, ASAP_SAS_SCORE_RANGES[essay_set])
        responses.append(
            _asap_sas_response(row, essay_set, record.fields["EssayText"], score, "train")
        )

    test_path = path / ASAP_SAS_TEST
    gold_path = path / ASAP_SAS_TEST_SCORES
    gold = _read_asap_sas_gold(gold_path)
    seen = {}
    for row, record in enumerate(_tsv_records(test_path, ("Id", "EssaySet", "EssayText"))):
        identifier = _unique_id(record, "Id", test_path, seen)
        essay_set = _known_item(record, "EssaySet", test_path, ASAP_SAS_SCORE_RANGES)
        if identifier not in gold:
            raise DatasetError(
                f"id {identifier!r} has no gold score in {gold_path}",
                path=test_path,
                line=record.line,
                column="Id",
            )
        gold_record, gold_set = gold.pop(identifier)
        if gold_set != essay_set:
            raise DatasetError(
                f"essay_set {gold_set!r} disagrees with EssaySet {essay_set!r}"
                f" on {test_path} line {record.line}",
                path=gold_path,
                line=gold_record.line,
                column="essay_set",
            )
        score = _score_in_range(
            gold_record, "essay_score", gold_path, ASAP_SAS_SCORE_RANGES[essay_set]
        )
        responses.append(
            _asap_sas_response(row, essay_set, record.fields["EssayText"], score, "test")
        )
    if gold:
        identifier, (gold_record, _) = next(iter(gold.items()))
        raise DatasetError(
            f"gold score for id {identifier!r} matches no response in {test_path}"
            f" ({len(gold)} unmatched)",
            path=gold_path,
            line=gold_record.line,
            column="id",
        )
    return responses


def _asap_sas_response(row: int, essay_set: str, text: str, score: float, split: str) -> GradedText:
    min_score, max_score = ASAP_SAS_SCORE_RANGES[essay_set]
    return GradedText(
        row=row,
        item_id=essay_set,
        question="",
        reference_answer="",
        response=_strip_surrounding_quotes(text),
        score=score,
        min_score=min_score,
        max_score=max_score,
        split=split,
    )


# --- our own CSV -------------------------------------------------------------------------------

_CSV_SPLITS = ("train", "test")
_ITEM_CONSTANTS = ("question", "reference_answer", "min_score", "max_score")


def read_graded_csv(path: Path) -> list[GradedText]:
    """Graded responses from a CSV with the columns of :data:`GRADED_CSV_COLUMNS`.

    Columns may come in any order and extra ones are ignored. An item's question, reference
    answer and score range must be identical on all its rows. Empty responses are kept: they
    are real answers and a grader has to score them.
    """
    path = Path(path)
    responses: list[GradedText] = []
    first_of_item: dict[str, _Record] = {}
    records = _records(path, delimiter=",", quoting=csv.QUOTE_MINIMAL, required=GRADED_CSV_COLUMNS)
    for record in records:
        fields = record.fields
        item_id = fields["item_id"]
        if not item_id.strip():
            raise DatasetError("item_id is empty", path=path, line=record.line, column="item_id")
        if fields["split"] not in _CSV_SPLITS:
            raise DatasetError(
                f"split {fields['split']!r} is not one of {', '.join(_CSV_SPLITS)}",
                path=path,
                line=record.line,
                column="split",
            )
        min_score = _number(record, "min_score", path)
        max_score = _number(record, "max_score", path)
        if not min_score < max_score:
            raise DatasetError(
                f"min_score {fields['min_score']!r} is not below max_score {fields['max_score']!r}",
                path=path,
                line=record.line,
                column="max_score",
            )
        score = _score_in_range(record, "score", path, (min_score, max_score))
        first = first_of_item.setdefault(item_id, record)
        for column in _ITEM_CONSTANTS:
            if _item_value(first, column) != _item_value(record, column):
                raise DatasetError(
                    f"item {item_id!r} has {column} {fields[column]!r} here but"
                    f" {first.fields[column]!r} on line {first.line}",
                    path=path,
                    line=record.line,
                    column=column,
                )
        responses.append(
            GradedText(
                row=len(responses),
                item_id=item_id,
                question=fields["question"],
                reference_answer=fields["reference_answer"],
                response=fields["response"],
                score=score,
                min_score=min_score,
                max_score=max_score,
                split=fields["split"],
            )
        )
    return responses


def _item_value(record: _Record, column: str) -> str | float:
    # Score bounds compare as numbers so that "4" and "4.0" are the same range.
    value = record.fields[column]
    return float(value) if column in ("min_score", "max_score") else value


# --- by name -----------------------------------------------------------------------------------


def _read_asap_aes_by_name(path: Path, fold: int | None) -> list[GradedText]:
    if fold is None:
        raise DatasetError("format 'asap-aes' needs a fold (the NEA folds are 0-4)", path=path)
    return read_asap_aes(path, fold)


def _without_folds(
    read: Callable[[Path], list[GradedText]], name: str
) -> Callable[[Path, int | None], list[GradedText]]:
    def read_without_fold(path: Path, fold: int | None) -> list[GradedText]:
        if fold is not None:
            raise DatasetError(f"format {name!r} has no folds, got fold={fold}", path=path)
        return read(path)

    return read_without_fold


DATASET_READERS: dict[str, Callable[[Path, int | None], list[GradedText]]] = {
    "asap-aes": _read_asap_aes_by_name,
    "asap-sas": _without_folds(read_asap_sas, "asap-sas"),
    "csv": _without_folds(read_graded_csv, "csv"),
}


def read_dataset(fmt: str, path: Path, *, fold: int | None = None) -> list[GradedText]:
    """Read ``path`` in the format named ``fmt`` (a key of :data:`DATASET_READERS`).

    ``fold`` is required by ``asap-aes`` and refused by the formats that have no folds, so a
    mistyped command line fails instead of evaluating on a different split.
    """
    try:
        reader = DATASET_READERS[fmt]
    except KeyError:
        raise DatasetError(
            f"unknown dataset format {fmt!r} (known: {', '.join(sorted(DATASET_READERS))})"
        ) from None
    return reader(Path(path), fold)


# --- selecting rows ----------------------------------------------------------------------------


def split_rows(rows: Iterable[GradedText], split: str) -> list[GradedText]:
    """The rows of one split, in their original order."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    return [row for row in rows if row.split == split]


def items_of(rows: Iterable[GradedText]) -> dict[str, list[GradedText]]:
    """Rows grouped by item, items in order of first appearance, rows in their original order."""
    items: dict[str, list[GradedText]] = {}
    for row in rows:
        items.setdefault(row.item_id, []).append(row)
    return items
