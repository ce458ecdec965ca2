import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from edu_dl.ml.grading.evaluation import simulate_review
from edu_dl.ml.grading.formats import read_graded_csv
from edu_dl.ml.grading.pipeline import MIN_SCORED_RESPONSES

HEADER = [
    "item_id",
    "question",
    "reference_answer",
    "response",
    "score",
    "min_score",
    "max_score",
    "split",
]
ITEMS = {
    "photo": (
        "How do plants make food?",
        "Plants use sunlight to turn water and carbon dioxide into glucose and oxygen.",
        [
            ("plants use sunlight to turn water and carbon dioxide into sugar", 2),
            ("light energy makes glucose from co2 and water, oxygen is released", 2),
            ("with sunlight the leaf makes glucose and gives off oxygen", 2),
            ("plants need the sun", 1),
            ("they use light somehow", 1),
            ("leaves are green", 1),
            ("i do not know", 0),
            ("plants eat soil", 0),
            ("animals eat them", 0),
        ],
    ),
    "evap": (
        "Why does a puddle dry up?",
        "The water evaporates: heat gives molecules energy to escape into the air as vapour.",
        [
            ("the water evaporates because heat gives the molecules energy to escape", 2),
            ("heat from the sun turns the water into vapour in the air", 2),
            ("it evaporates into water vapour when it is warm", 2),
            ("the sun dries it", 1),
            ("it goes into the air", 1),
            ("because it is hot", 1),
            ("the ground is thirsty", 0),
            ("no idea", 0),
            ("someone cleaned it", 0),
        ],
    ),
    "cells": (
        "What does the cell membrane do?",
        "It controls what enters and leaves the cell and protects it.",
        [
            ("it controls what goes in and out of the cell", 2),
            ("the membrane lets some things enter and leave and protects the cell", 2),
            ("it decides what can enter or exit the cell", 2),
            ("it protects the cell", 1),
            ("it is the outside of the cell", 1),
            ("keeps the cell together", 1),
            ("it makes energy", 0),
            ("it is the brain of the cell", 0),
            ("dunno", 0),
        ],
    ),
}


def write_csv(path, *, test_items=(), repeats=3, without_reference=()):
    """Each item's answers, repeated with small variations; rows of ``test_items`` are test,
    and the items of ``without_reference`` have no reference answer."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for item_id, (question, reference, answers) in ITEMS.items():
            for r in range(repeats):
                for n, (text, score) in enumerate(answers):
                    variant = f"{text} {'really' if r % 2 else ''} {'so' * (r // 2)}".strip()
                    if item_id in test_items:
                        split = "test"
                    else:
                        split = "test" if (n + r) % 3 == 0 else "train"
                    model = "" if item_id in without_reference else reference
                    writer.writerow([item_id, question, model, variant, score, 0, 2, split])
    return path


@pytest.mark.django_db
def test_seen_items_writes_figures_and_one_prediction_per_test_row(tmp_path):
    data = write_csv(tmp_path / "answers.csv")
    predictions = tmp_path / "predictions.csv"
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "",
        "--predictions", str(predictions), "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(out.read_text())
    rows = read_graded_csv(data)
    test_rows = [r.row for r in rows if r.split == "test"]
    with open(predictions, newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [int(w["row"]) for w in written] == test_rows
    assert set(written[0]) == {"row", "item_id", "gold", "predicted", "confidence"}
    assert {i["item_id"] for i in result["items"]} == set(ITEMS)
    assert 0.0 <= result["qwk_mean"] <= 1.0
    assert result["test_responses"] == len(test_rows)
    for key in ("ece_mean", "train_seconds", "inference_seconds", "device"):
        assert key in result
    assert result["device"] == "cpu"


@pytest.mark.django_db
@pytest.mark.parametrize(("until", "grader"), [(None, "cold-start"), ("0", "item")])
def test_seen_items_with_few_training_rows_are_scored_as_production_would(tmp_path, until, grader):
    # About 18 training rows an item, each with a reference answer: below the default
    # GRADING_COLD_START_UNTIL the cold-start grader scores them; with 0, their own graders.
    data = write_csv(tmp_path / "answers.csv", repeats=3)
    out = tmp_path / "result.json"
    flags = [] if until is None else ["--cold-start-until", until]

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "", *flags, "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(out.read_text())
    assert result["cold_start_until"] == (100 if until is None else 0)
    assert {i["grader"] for i in result["items"]} == {grader}
    # Training the cold-start grader, or the items' own, counts as training.
    assert result["train_seconds"] > 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--cold-start-until", "-1"], "--cold-start-until must be 0 or more, not -1"),
        (["--tune-layers", "-1"], "--tune-layers must be 0 or more, not -1"),
        (["--tune-epochs", "0"], "--tune-epochs must be 1 or more, not 0"),
        (["--retune-growth", "-1"], r"--retune-growth must be from 0 to 100, not -1\.0"),
        (["--review-only"], "--review-only needs --simulate-review"),
        (
            ["--simulate-review", "--review-only", "--predictions", "p.csv"],
            "--review-only writes no --predictions",
        ),
    ],
)
def test_an_option_out_of_its_range_or_without_its_partner_is_refused(tmp_path, options, message):
    data = write_csv(tmp_path / "answers.csv")

    with pytest.raises(CommandError, match=message):
        call_command(
            "evaluate_grader",
            "--format", "csv", "--data", str(data), "--encoder", "", *options,
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip


@pytest.mark.django_db
def test_unseen_items_scores_held_out_items_from_their_reference_answer(tmp_path):
    data = write_csv(tmp_path / "answers.csv", test_items=("cells",), repeats=4)
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "",
        "--protocol", "unseen-items", "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(out.read_text())
    assert [i["item_id"] for i in result["items"]] == ["cells"]
    assert result["items"][0]["grader"] == "cold-start"
    assert result["items"][0]["n_test"] == 4 * len(ITEMS["cells"][2])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("protocol", "test_items", "reason"),
    [
        ("seen-items", (), "no reference answer for the cold-start grader"),
        ("unseen-items", (), "no reference answer for the cold-start grader"),
    ],
)
def test_an_item_no_grader_can_score_is_reported_and_the_rest_are_scored(
    tmp_path, protocol, test_items, reason
):
    # "cells" has no reference answer: in seen-items it keeps too few training rows for its
    # own grader; in unseen-items (every item mixes splits, so each is held out in turn, the
    # cold-start grader learning from the others) it has nothing to compare its answers with.
    data = write_csv(
        tmp_path / "answers.csv", repeats=3, test_items=test_items, without_reference=("cells",)
    )
    with open(data, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if protocol == "seen-items":
        cells_train = [r for r in rows if r[0] == "cells" and r[-1] == "train"]
        dropped = cells_train[MIN_SCORED_RESPONSES - 1 :]
        rows = [r for r in rows if r not in dropped]
    else:
        # A fourth item, so that each held-out one leaves two with reference answers to learn from.
        rows += [["leaves", *r[1:]] for r in rows if r[0] == "photo"]
    with open(data, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    predictions = tmp_path / "predictions.csv"
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "", "--protocol", protocol,
        "--predictions", str(predictions), "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(out.read_text())
    skipped = {item["item_id"]: item for item in result["not_scored"]}
    assert reason in skipped["cells"]["reason"]
    cells_test = [r for r in read_graded_csv(data) if r.item_id == "cells" and r.split == "test"]
    assert skipped["cells"]["n_test"] == len(cells_test)
    scored = {i["item_id"] for i in result["items"]}
    assert set(skipped) == {"cells"}
    assert scored == (
        {"photo", "evap", "leaves"} if protocol == "unseen-items" else {"photo", "evap"}
    )
    with open(predictions, newline="") as handle:
        assert {w["item_id"] for w in csv.DictReader(handle)} == scored


@pytest.mark.django_db
def test_unseen_items_with_too_little_to_learn_from_is_a_clear_error(tmp_path):
    # Each of the three items held out in turn leaves at most one with a reference answer.
    data = write_csv(tmp_path / "answers.csv", without_reference=("cells",))

    with pytest.raises(CommandError, match="no item could be scored") as raised:
        call_command(
            "evaluate_grader",
            "--format", "csv", "--data", str(data), "--encoder", "",
            "--protocol", "unseen-items",
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip
    assert "photo: the cold-start grader could not learn from the other items" in str(raised.value)
    assert "cells: no reference answer" in str(raised.value)


@pytest.mark.django_db
def test_simulate_review_reports_a_curve(tmp_path):
    data = write_csv(tmp_path / "answers.csv", repeats=4)
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "",
        "--simulate-review", "--review-batch", "12", "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    curve = json.loads(out.read_text())["review_curve"]
    assert curve, "at least one round"
    for point in curve:
        assert 0.0 <= point["hand_share"] <= 1.0
        assert -1.0 <= point["qwk"] <= 1.0
    shares = [p["hand_share"] for p in curve]
    assert shares == sorted(shares, reverse=True), "releases are final: hand share never grows"


@pytest.mark.django_db
def test_the_simulation_can_run_without_the_held_out_evaluation(tmp_path):
    data = write_csv(tmp_path / "answers.csv", repeats=4)
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "",
        "--simulate-review", "--review-only", "--review-batch", "12", "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(out.read_text())
    assert result["review_curve"] and result["review_items"]
    assert "items" not in result and "qwk_mean" not in result


@pytest.mark.django_db
def test_simulation_gates_can_be_set_for_one_run(tmp_path):
    data = write_csv(tmp_path / "answers.csv", repeats=4)
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "",
        "--simulate-review", "--review-batch", "12",
        "--release-min-qwk", "0", "--release-min-confidence", "0",
        "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(out.read_text())
    assert result["release_min_qwk"] == 0.0
    assert result["release_min_confidence"] == 0.0
    # With both gates open every waiting answer is released once a grader exists.
    assert result["review_curve"][-1]["hand_share"] < 1.0
    assert all(item["released_share"] > 0 for item in result["review_items"])


@pytest.mark.django_db
@pytest.mark.parametrize("flag", ["--release-min-qwk", "--release-min-confidence"])
def test_simulation_gates_outside_zero_to_one_are_refused(tmp_path, flag):
    data = write_csv(tmp_path / "answers.csv", repeats=4)

    with pytest.raises(CommandError, match=f"{flag} must be between 0 and 1, not 1.5"):
        call_command(
            "evaluate_grader",
            "--format", "csv", "--data", str(data), "--encoder", "",
            "--simulate-review", flag, "1.5",
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip


def test_simulation_with_an_unreachable_bar_leaves_everything_to_the_teacher(tmp_path):
    rows = read_graded_csv(write_csv(tmp_path / "answers.csv", repeats=4))

    result = simulate_review(rows, batch=10, min_qwk=1.01, min_confidence=0.0)

    assert result["review_curve"][-1]["hand_share"] == 1.0
    assert result["review_curve"][-1]["qwk"] == 1.0
    assert all(item["released_share"] == 0.0 for item in result["review_items"])
    assert all(item["released_agreement"] is None for item in result["review_items"])


def test_the_simulation_leaves_the_random_check_to_the_teacher_and_validates_on_it(tmp_path):
    rows = read_graded_csv(write_csv(tmp_path / "answers.csv", repeats=20))

    result = simulate_review(rows, batch=20, min_qwk=0.0, min_confidence=0.0, audit_share=0.5)

    assert result["audit_share"] == 0.5
    for item in result["review_items"]:
        assert item["audited"] >= 50  # enough to measure a grader on
        # Both gates are open, so everything else waiting is released once a grader measured
        # on the check exists; the check never is.
        assert 0 < item["released_share"] <= 1 - item["audited"] / item["responses"]
        # What the policy promises to keep: the released grades' agreement on the item's
        # scale; the final QWK mixes them with the teacher's exact scores.
        assert item["released_agreement"] <= item["qwk"] <= 1.0
        assert sum(r["answers"] for r in item["releases"]) == round(
            item["released_share"] * item["responses"]
        )
        assert all(0 < r["released_of_waiting"] <= 1 for r in item["releases"])
        assert all(0 < r["gate_share"] <= 1 for r in item["releases"])


def test_no_grade_is_released_before_the_random_check_can_measure_the_grader(tmp_path):
    rows = read_graded_csv(write_csv(tmp_path / "answers.csv", repeats=4))

    result = simulate_review(rows, batch=10, min_qwk=0.0, min_confidence=0.0, audit_share=0.3)

    assert all(0 < item["audited"] < 50 for item in result["review_items"])
    assert all(item["released_share"] == 0.0 for item in result["review_items"])
    assert result["review_curve"][-1]["hand_share"] == 1.0
    # With no random check at all the graders are measured on the teacher's scores.
    unchecked = simulate_review(rows, batch=10, min_qwk=0.0, min_confidence=0.0)
    assert all(item["released_share"] > 0 for item in unchecked["review_items"])


@pytest.mark.django_db
def test_a_random_check_share_outside_its_range_is_refused(tmp_path):
    data = write_csv(tmp_path / "answers.csv", repeats=4)

    with pytest.raises(CommandError, match=r"--audit-share must be from 0 to below 1, not 1\.0"):
        call_command(
            "evaluate_grader",
            "--format", "csv", "--data", str(data), "--encoder", "",
            "--simulate-review", "--audit-share", "1",
            stdout=io.StringIO(), stderr=io.StringIO(),
        )  # fmt: skip


@pytest.mark.django_db
def test_bad_input_is_a_clear_command_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,response\nq1,hello\n")

    with pytest.raises(CommandError, match="question"):
        call_command("evaluate_grader", "--format", "csv", "--data", str(bad), "--encoder", "")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("evaluate_grader", "--format", "csv", "--data", str(tmp_path / "none.csv"))
    with pytest.raises(CommandError, match="folds"):
        call_command(
            "evaluate_grader", "--format", "asap-aes", "--data", str(tmp_path), "--folds", "7"
        )


@pytest.mark.django_db
def test_unseen_items_with_mixed_splits_holds_out_groups_of_items(tmp_path):
    data = write_csv(tmp_path / "answers.csv", repeats=4)  # every item has train and test rows
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "",
        "--protocol", "unseen-items", "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(out.read_text())
    rows = read_graded_csv(data)
    assert sorted(i["item_id"] for i in result["items"]) == sorted(ITEMS)
    assert result["test_responses"] == sum(1 for r in rows if r.split == "test")
    assert {i["grader"] for i in result["items"]} == {"cold-start"}


@pytest.mark.django_db
def test_with_an_encoder_each_item_grader_tunes_its_top_layers(tmp_path, settings, monkeypatch):
    from edu_dl.ml.grading import encoder as encoder_module
    from tests.tiny_encoder import TunableEncoder

    monkeypatch.setitem(encoder_module._cache, ("tiny-bert", "cpu"), TunableEncoder())
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_ENCODER_TUNE_MIN_ANSWERS": 30}
    data = write_csv(tmp_path / "answers.csv", repeats=8)
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "tiny-bert",
        "--tune-layers", "1", "--tune-epochs", "1", "--cold-start-until", "0",
        "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(out.read_text())
    assert (result["encoder"], result["tune_layers"], result["tune_epochs"]) == ("tiny-bert", 1, 1)
    for item in result["items"]:
        assert item["grader"] == "item"
        assert (item["tuned"]["layers"], item["tuned"]["epochs"]) == (1, 1)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fmt", "essays_too", "expected"),
    [("csv", False, "tiny-bert"), ("asap-aes", False, None), ("asap-aes", True, "tiny-bert")],
)
def test_without_the_flag_the_setting_names_the_encoder_and_essays_go_without_it(
    tmp_path, settings, monkeypatch, fmt, essays_too, expected
):
    from edu_dl.ml.grading import encoder as encoder_module
    from tests.ml.grading.test_formats import aes_line, make_asap_aes
    from tests.tiny_encoder import TunableEncoder

    monkeypatch.setitem(encoder_module._cache, ("tiny-bert", "cpu"), TunableEncoder())
    settings.EDU_DL = {
        **settings.EDU_DL,
        "GRADING_ENCODER": "tiny-bert",
        "GRADING_ENCODER_ESSAYS": essays_too,
    }
    if fmt == "csv":
        data = write_csv(tmp_path / "answers.csv")
    else:
        # Prompt 1 (scores 2 to 12): 24 essays to learn from, 6 to score.
        essays = [
            aes_line(
                n, 1, f"{'computers help people learn ' * (n % 6 + 1)}essay {n}", 2 + n % 6 * 2
            )
            for n in range(1, 31)
        ]
        ids = [str(n) for n in range(1, 31)]
        data = make_asap_aes(
            tmp_path / "asap_aes",
            essays,
            {0: {"train": "\n".join(ids[:24]) + "\n", "test": "\n".join(ids[24:]) + "\n"}},
        )
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", fmt, "--data", str(data), "--folds", "0", "--cold-start-until", "0",
        "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    assert json.loads(out.read_text())["encoder"] == expected


@pytest.mark.django_db
def test_the_simulation_with_an_encoder_reports_its_tunings(tmp_path, settings, monkeypatch):
    from edu_dl.ml.grading import encoder as encoder_module
    from tests.tiny_encoder import TunableEncoder

    monkeypatch.setitem(encoder_module._cache, ("tiny-bert", "cpu"), TunableEncoder())
    settings.EDU_DL = {**settings.EDU_DL, "GRADING_ENCODER_TUNE_MIN_ANSWERS": 20}
    data = write_csv(tmp_path / "answers.csv", repeats=4)
    out = tmp_path / "result.json"

    call_command(
        "evaluate_grader",
        "--format", "csv", "--data", str(data), "--encoder", "tiny-bert",
        "--tune-epochs", "1", "--cold-start-until", "0", "--simulate-review",
        "--review-batch", "12", "--retune-growth", "0.25", "--json", str(out),
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip

    result = json.loads(out.read_text())
    assert result["retune_growth"] == 0.25
    for item in result["review_items"]:
        assert 0 <= item["encoder_tunings"] <= item["retrains"]
