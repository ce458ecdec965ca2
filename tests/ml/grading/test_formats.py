from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import pytest

from edu_dl.ml.grading.formats import (
    DATASET_READERS,
    DatasetError,
    GradedText,
    items_of,
    read_asap_aes,
    read_asap_aes_folds,
    read_asap_sas,
    read_dataset,
    read_graded_csv,
    split_rows,
)

SHARED_DATA = Path("/work/shared/data")

AES_HEADER = [
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
]
CSV_HEADER = "item_id,question,reference_answer,response,score,min_score,max_score,split\n"


def write_gz(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8", newline="") as stream:
        stream.write("".join(line + "\n" for line in lines))
    return path


def aes_line(essay_id: int, essay_set: int, essay: str, score: int) -> str:
    fields = [str(essay_id), str(essay_set), essay, "", "", "", str(score)]
    return "\t".join(fields + [""] * (len(AES_HEADER) - len(fields)))


def make_asap_aes(root: Path, essay_lines: list[str], folds: dict[int, dict[str, str]]) -> Path:
    write_gz(root / "training_set_rel3.utf8.tsv.gz", ["\t".join(AES_HEADER), *essay_lines])
    for fold, lists in folds.items():
        fold_path = root / "nea_folds" / f"fold_{fold}"
        fold_path.mkdir(parents=True)
        for split in ("train", "dev", "test"):
            (fold_path / f"{split}_ids.txt").write_text(lists.get(split, ""), encoding="utf-8")
    (root / "prompts").mkdir()
    for essay_set in range(1, 9):
        (root / "prompts" / f"prompt{essay_set}.txt").write_bytes(
            f"\ufeffPrompt {essay_set}: write.\n".encode()
        )
    return root


THREE_ESSAYS = [
    aes_line(1, 1, '"Dear paper, computers ""help"" us."', 8),
    aes_line(2, 1, 'He said "no and left.', 2),
    aes_line(7, 8, '"Narrative, in quotes."', 60),
]


def test_asap_aes_keeps_every_row_and_strips_one_pair_of_quotes(tmp_path):
    # Given an essay file where one essay holds an unbalanced quote (default CSV quoting
    # would swallow the next row into it)
    root = make_asap_aes(tmp_path, THREE_ESSAYS, {0: {"train": "1\n7\n", "dev": "", "test": "2\n"}})

    # When
    rows = read_asap_aes(root, 0)

    # Then
    assert rows == [
        GradedText(
            0,
            "1",
            "Prompt 1: write.",
            "",
            'Dear paper, computers ""help"" us.',
            8.0,
            2.0,
            12.0,
            "train",
        ),
        GradedText(1, "1", "Prompt 1: write.", "", 'He said "no and left.', 2.0, 2.0, 12.0, "test"),
        GradedText(
            2, "8", "Prompt 8: write.", "", "Narrative, in quotes.", 60.0, 0.0, 60.0, "train"
        ),
    ]


def test_asap_aes_folds_share_the_essays_and_differ_only_in_split(tmp_path):
    root = make_asap_aes(
        tmp_path,
        THREE_ESSAYS,
        {
            0: {"train": "1\n", "dev": "2\n", "test": "7\n"},
            1: {"train": "7\n", "dev": "1\n", "test": "2\n"},
        },
    )

    folds = read_asap_aes_folds(root, [0, 1])

    assert [row.split for row in folds[0]] == ["train", "dev", "test"]
    assert [row.split for row in folds[1]] == ["dev", "test", "train"]
    assert [row.response for row in folds[0]] == [row.response for row in folds[1]]
    assert split_rows(folds[1], "dev") == [folds[1][0]]


def test_asap_aes_refuses_an_essay_missing_from_the_fold(tmp_path):
    root = make_asap_aes(tmp_path, THREE_ESSAYS, {0: {"train": "1\n", "test": "2\n"}})

    with pytest.raises(DatasetError) as raised:
        read_asap_aes(root, 0)

    assert str(raised.value) == (
        f"{root / 'training_set_rel3.utf8.tsv.gz'}, line 4, column 'essay_id': essay id '7'"
        " is in none of fold 0's id lists (1 essays unlisted)"
    )


def test_asap_aes_refuses_an_essay_listed_in_two_splits(tmp_path):
    root = make_asap_aes(
        tmp_path, THREE_ESSAYS, {0: {"train": "1\n2\n", "dev": "7\n", "test": "\n2\n"}}
    )

    with pytest.raises(DatasetError) as raised:
        read_asap_aes(root, 0)

    fold_path = root / "nea_folds" / "fold_0"
    assert str(raised.value) == (
        f"{fold_path / 'test_ids.txt'}, line 2: essay id '2' already listed in"
        f" {fold_path / 'train_ids.txt'} line 2"
    )


def test_asap_aes_names_the_available_folds(tmp_path):
    root = make_asap_aes(tmp_path, THREE_ESSAYS, {0: {"train": "1\n2\n7\n"}})

    with pytest.raises(DatasetError, match=r"no fold 5 \(available: 0\)"):
        read_asap_aes(root, 5)


def test_asap_aes_refuses_a_score_outside_the_official_range(tmp_path):
    root = make_asap_aes(tmp_path, [aes_line(1, 3, "short", 4)], {0: {"train": "1\n"}})

    with pytest.raises(DatasetError) as raised:
        read_asap_aes(root, 0)

    assert str(raised.value) == (
        f"{root / 'training_set_rel3.utf8.tsv.gz'}, line 2, column 'domain1_score':"
        " score '4' is outside 0-3"
    )


def test_asap_aes_refuses_a_row_split_by_a_stray_tab(tmp_path):
    root = make_asap_aes(
        tmp_path,
        [aes_line(1, 1, "fine", 8), aes_line(2, 1, "one\ttab too many", 8)],
        {0: {"train": "1\n2\n"}},
    )

    with pytest.raises(DatasetError, match=r"line 3: expected 28 fields, found 29"):
        read_asap_aes(root, 0)


def make_asap_sas(root: Path, *, gold_lines: list[str]) -> Path:
    write_gz(
        root / "train.tsv.gz",
        [
            "Id\tEssaySet\tScore1\tScore2\tEssayText",
            "1\t1\t3\t2\tThe mass, and the vinegar.",
            '2\t3\t0\t1\tHe said "no.',
            "3\t10\t2\t2\t",
        ],
    )
    write_gz(
        root / "public_leaderboard_rel_2.tsv.gz",
        [
            "Id\tEssaySet\tEssayText",
            '1673\t6\t"Cells, ""pumps"", and more."',
            "1674\t4\tA short answer.",
        ],
    )
    gold = ["id,essay_set,essay_weight,essay_score,Usage", *gold_lines]
    (root / "public_leaderboard_solution.csv").write_text("".join(f"{line}\n" for line in gold))
    return root


def test_asap_sas_reads_train_then_scored_test_responses(tmp_path):
    root = make_asap_sas(tmp_path, gold_lines=["1674,4,1,2,PublicTest", "1673,6,1,3,PublicTest"])

    rows = read_asap_sas(root)

    assert rows == [
        GradedText(0, "1", "", "", "The mass, and the vinegar.", 3.0, 0.0, 3.0, "train"),
        GradedText(1, "3", "", "", 'He said "no.', 0.0, 0.0, 2.0, "train"),
        GradedText(2, "10", "", "", "", 2.0, 0.0, 2.0, "train"),
        GradedText(0, "6", "", "", 'Cells, ""pumps"", and more.', 3.0, 0.0, 3.0, "test"),
        GradedText(1, "4", "", "", "A short answer.", 2.0, 0.0, 2.0, "test"),
    ]


def test_asap_sas_refuses_a_test_response_without_gold_score(tmp_path):
    root = make_asap_sas(tmp_path, gold_lines=["1673,6,1,3,PublicTest"])

    with pytest.raises(DatasetError) as raised:
        read_asap_sas(root)

    assert str(raised.value) == (
        f"{root / 'public_leaderboard_rel_2.tsv.gz'}, line 3, column 'Id': id '1674' has no"
        f" gold score in {root / 'public_leaderboard_solution.csv'}"
    )


def test_asap_sas_refuses_a_gold_score_without_response(tmp_path):
    root = make_asap_sas(
        tmp_path,
        gold_lines=["1673,6,1,3,PublicTest", "1674,4,1,2,PublicTest", "1999,4,1,1,PublicTest"],
    )

    with pytest.raises(DatasetError, match=r"line 4, column 'id': gold score for id '1999'"):
        read_asap_sas(root)


def test_asap_sas_refuses_a_test_score_outside_the_set_range(tmp_path):
    root = make_asap_sas(tmp_path, gold_lines=["1673,6,1,3,PublicTest", "1674,4,1,3,PublicTest"])

    with pytest.raises(DatasetError) as raised:
        read_asap_sas(root)

    assert str(raised.value) == (
        f"{root / 'public_leaderboard_solution.csv'}, line 3, column 'essay_score':"
        " score '3' is outside 0-2"
    )


def write_csv(tmp_path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    path = tmp_path / "graded.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_graded_csv_reads_quoted_newlines_extra_columns_and_empty_responses(tmp_path):
    path = write_csv(
        tmp_path,
        "split,score,teacher,item_id,question,reference_answer,response,min_score,max_score\n"
        'train,2,ann,q1,"Why, exactly?",Because.,"First line,\nsecond line",0,2\n'
        "test,0,bob,q2,Name it.,Water,,0,1\n"
        'test,1.5,ann,q1,"Why, exactly?",Because.,"She said ""so""",0,2.0\n',
        encoding="utf-8-sig",  # with a BOM, as spreadsheet programs write it
    )

    rows = read_graded_csv(path)

    assert rows == [
        GradedText(
            0, "q1", "Why, exactly?", "Because.", "First line,\nsecond line", 2.0, 0.0, 2.0, "train"
        ),
        GradedText(1, "q2", "Name it.", "Water", "", 0.0, 0.0, 1.0, "test"),
        GradedText(2, "q1", "Why, exactly?", "Because.", 'She said "so"', 1.5, 0.0, 2.0, "test"),
    ]
    assert list(items_of(rows)) == ["q1", "q2"]
    assert items_of(rows)["q1"] == [rows[0], rows[2]]
    assert split_rows(rows, "test") == [rows[1], rows[2]]


def test_graded_csv_reads_the_same_without_a_bom(tmp_path):
    text = CSV_HEADER + "q1,Q,R,answer,1,0,2,train\n"
    with_bom = read_graded_csv(write_csv(tmp_path, text, encoding="utf-8-sig"))
    assert with_bom == read_graded_csv(write_csv(tmp_path, text))
    assert with_bom[0].item_id == "q1"


def test_graded_csv_names_a_missing_column(tmp_path):
    path = write_csv(tmp_path, "item_id,question,response,score,min_score,max_score,split\n")

    with pytest.raises(DatasetError) as raised:
        read_graded_csv(path)

    assert str(raised.value) == (
        f"{path}, line 1, column 'reference_answer': header lacks column(s) reference_answer"
        " (found: item_id, question, response, score, min_score, max_score, split)"
    )


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        ("q1,Q,R,a,1,0,2,dev", "split", "split 'dev' is not one of train, test"),
        ("q1,Q,R,a,3,0,2,train", "score", "score '3' is outside 0-2"),
        ("q1,Q,R,a,-1,0,2,train", "score", "score '-1' is outside 0-2"),
        ("q1,Q,R,a,two,0,2,train", "score", "'two' is not a number"),
        ("q1,Q,R,a,nan,0,2,train", "score", "'nan' is not a number"),
        ("q1,Q,R,a,1,0,,train", "max_score", "'' is not a number"),
        ("q1,Q,R,a,1,2,2,train", "max_score", "min_score '2' is not below max_score '2'"),
        (",Q,R,a,1,0,2,train", "item_id", "item_id is empty"),
    ],
)
def test_graded_csv_refuses_a_bad_value_naming_line_and_column(tmp_path, row, column, problem):
    # The first data row spans lines 2-3, so the bad row starts on line 4.
    path = write_csv(tmp_path, CSV_HEADER + 'q1,Q,R,"two\nlines",1,0,2,train\n' + row + "\n")

    with pytest.raises(DatasetError) as raised:
        read_graded_csv(path)

    assert str(raised.value) == f"{path}, line 4, column {column!r}: {problem}"
    assert (raised.value.line, raised.value.column) == (4, column)


def test_graded_csv_refuses_an_item_whose_max_score_changes(tmp_path):
    path = write_csv(
        tmp_path,
        CSV_HEADER + "q1,Q,R,a,1,0,2,train\nq2,Q,R,b,1,0,4,train\nq1,Q,R,c,1,0,3,test\n",
    )

    with pytest.raises(DatasetError) as raised:
        read_graded_csv(path)

    assert str(raised.value) == (
        f"{path}, line 4, column 'max_score': item 'q1' has max_score '3' here but '2' on line 2"
    )


def test_graded_csv_refuses_a_row_with_a_missing_field(tmp_path):
    path = write_csv(tmp_path, CSV_HEADER + "q1,Q,R,a,1,0,2\n")

    with pytest.raises(DatasetError, match=r"line 2: expected 8 fields, found 7"):
        read_graded_csv(path)


def test_read_dataset_dispatches_by_name(tmp_path):
    path = write_csv(tmp_path, CSV_HEADER + "q1,Q,R,a,1,0,2,train\n")

    assert read_dataset("csv", path) == read_graded_csv(path)
    assert sorted(DATASET_READERS) == ["asap-aes", "asap-sas", "csv"]


def test_read_dataset_refuses_unknown_formats_and_misplaced_folds(tmp_path):
    with pytest.raises(DatasetError) as raised:
        read_dataset("kaggle", tmp_path)
    assert str(raised.value) == "unknown dataset format 'kaggle' (known: asap-aes, asap-sas, csv)"

    with pytest.raises(DatasetError, match="format 'csv' has no folds, got fold=1"):
        read_dataset("csv", tmp_path / "graded.csv", fold=1)
    with pytest.raises(DatasetError, match="format 'asap-aes' needs a fold"):
        read_dataset("asap-aes", tmp_path)


def test_split_rows_refuses_an_unknown_split():
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        split_rows([], "valid")


@pytest.mark.skipif(
    not (SHARED_DATA / "asap_sas").is_dir() or not (SHARED_DATA / "asap_aes").is_dir(),
    reason="the ASAP data are not in /work/shared/data",
)
def test_real_asap_datasets_have_their_published_sizes():
    sas = read_dataset("asap-sas", SHARED_DATA / "asap_sas")
    assert Counter(row.split for row in sas) == {"train": 17207, "test": 5224}
    assert Counter(row.item_id for row in split_rows(sas, "test"))["1"] == 557

    folds = read_asap_aes_folds(SHARED_DATA / "asap_aes", range(5))
    assert [len(rows) for rows in folds.values()] == [12978] * 5
    assert len(split_rows(folds[0], "test")) == 2598
    assert sum(len(split_rows(rows, "test")) for rows in folds.values()) == 12978
    assert Counter(row.item_id for row in folds[0]) == {
        "1": 1783, "2": 1800, "3": 1726, "4": 1772, "5": 1805, "6": 1800, "7": 1569, "8": 723,
    }  # fmt: skip
