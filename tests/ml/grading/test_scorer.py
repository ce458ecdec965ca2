import numpy as np
import pytest
import torch

from edu_dl.ml.checkpoint import load_checkpoint
from edu_dl.ml.grading import text as textlib
from edu_dl.ml.grading.pipeline import (
    GraderUnavailable,
    TrainedGrader,
    score_levels,
    train_grader,
)
from edu_dl.ml.grading.policy import (
    ReleasedSample,
    in_audit_sample,
    release_curve_of,
    release_gate,
    released_by_graders,
    released_sample,
    review_priority,
)
from edu_dl.ml.grading.scorer import (
    ItemScorer,
    ScorerConfig,
    _eigen,
    _kernel,
    _loo,
    _search,
    confidence_of,
    cross_fitted_qwk,
    fit_confidence_model,
    fit_item_scorer,
    fit_thresholds,
    release_curve,
    share_thresholds,
)
from edu_dl.ml.metrics import (
    expected_calibration_error,
    quadratic_weighted_kappa,
    subset_agreement,
)
from edu_dl.ml.registry import build_model, model_names

GOOD = [
    "plants use sunlight to make glucose from carbon dioxide and water",
    "photosynthesis turns light energy, water and carbon dioxide into sugar and oxygen",
    "the plant makes food (glucose) with energy from the sun, releasing oxygen",
    "chlorophyll absorbs sunlight so the leaf can make sugar from co2 and water",
]
PARTIAL = [
    "plants need sunlight to grow",
    "it is about the sun and leaves",
    "plants make oxygen",
    "leaves are green because of chlorophyll",
]
WRONG = ["i do not know", "animals eat plants", "the sky is blue", "water boils at 100 degrees"]


def make_answers(repeats: int = 4):
    texts, scores = [], []
    for r in range(repeats):
        for group, score in ((GOOD, 2.0), (PARTIAL, 1.0), (WRONG, 0.0)):
            for t in group:
                texts.append(f"{t} {'indeed' * (r % 2)}".strip())
                scores.append(score)
    return texts, scores


def test_char_ngrams_are_counted_per_document_and_stay_inside_it():
    counts = textlib.char_ngram_counts(["ab", "", "ab"], orders=(2,), n_buckets=1024)

    # " ab " has 3 bigrams; the empty text only " " + " " = 1 bigram ("  ").
    per_doc = torch.zeros(3).index_add_(0, counts.doc, counts.count)
    assert per_doc.tolist() == [3.0, 1.0, 3.0]
    first = sorted(counts.bucket[counts.doc == 0].tolist())
    third = sorted(counts.bucket[counts.doc == 2].tolist())
    assert first == third


def test_normalisation_folds_width_case_and_spaces():
    assert textlib.normalize_text("  \uff21\uff22\uff23\tdef\n ") == "abc def"


def test_tfidf_rows_have_unit_length():
    counts = textlib.word_ngram_counts(["a b c", "a a", "zzz"], orders=(1, 2), n_buckets=4096)
    idf = textlib.idf_from_frequency(textlib.document_frequency(counts), 3)

    matrix = textlib.tfidf_matrix(counts, idf).to_dense()

    assert torch.allclose(matrix.norm(dim=1), torch.ones(3))


def test_trained_grader_ranks_good_answers_above_wrong_ones():
    texts, scores = make_answers()

    grader = train_grader(texts, scores, list(range(len(texts))), min_score=0, max_score=2)
    predictions = grader.grade(
        ["sunlight, water and carbon dioxide become glucose and oxygen", "the sky is green"]
    )

    assert predictions[0].score == 2.0
    assert predictions[1].score == 0.0
    assert all(0.0 <= p.confidence <= 1.0 for p in predictions)
    assert grader.metrics["validated_qwk"] > 0.8
    assert grader.metrics["n_train"] == len(texts)


@pytest.mark.parametrize(("min_for_view_search", "searched"), [(150, False), (10, True)])
def test_view_weights_are_searched_only_with_enough_answers(min_for_view_search, searched):
    texts, scores = make_answers()  # 48 answers
    config = ScorerConfig(min_for_view_search=min_for_view_search)

    _, report = fit_item_scorer(texts, scores, min_score=0, max_score=2, n_levels=3, config=config)

    # The equal mix is always tried first; with too few answers it is the only one.
    assert report.search[0]["weights"] == dict.fromkeys(report.view_weights, 1.0)
    assert (len(report.search) > 1) is searched
    if not searched:
        assert report.view_weights == dict.fromkeys(report.view_weights, 1.0)
        assert report.ridge in config.ridge_grid


def test_explanation_names_similar_scored_answers_and_phrases():
    texts, scores = make_answers()
    grader = train_grader(
        texts, scores, [1000 + i for i in range(len(texts))], min_score=0, max_score=2
    )

    prediction = grader.grade(["plants use sunlight to make glucose"])[0]

    assert len(prediction.similar) == 3
    assert all(s["key"] >= 1000 for s in prediction.similar)
    assert prediction.similar[0]["score"] == 2.0
    assert prediction.phrases, "a model score always comes with the phrases behind it"
    assert {"text", "weight"} == set(prediction.phrases[0])
    assert prediction.explanation() == {
        "similar": prediction.similar,
        "phrases": prediction.phrases,
    }


def test_grader_survives_a_checkpoint_round_trip():
    texts, scores = make_answers()
    grader = train_grader(
        texts,
        scores,
        list(range(len(texts))),
        min_score=0,
        max_score=2,
        reference_answer="Sunlight, water and carbon dioxide make glucose and oxygen.",
    )
    probe = ["plants make glucose with light", "no idea"]

    restored = TrainedGrader.from_bytes(grader.to_bytes())

    before, after = grader.scorer(probe), restored.scorer(probe)
    assert torch.allclose(before.raw, after.raw)
    assert torch.allclose(before.confidence, after.confidence)
    assert restored.keys == grader.keys
    assert restored.metrics == grader.metrics
    assert isinstance(load_checkpoint(grader.to_bytes()).model, ItemScorer)


def test_a_grader_fitted_before_the_level_columns_of_its_confidence_still_grades():
    texts, scores = make_answers()
    grader = train_grader(texts, scores, list(range(len(texts))), min_score=0, max_score=2)
    probe = ["plants make glucose with light", "no idea"]
    assert grader.scorer.calibrator.numel() == grader.scorer.config.confidence_features == 6 + 2
    # What a grader saved before the confidence model read the level given looks like.
    grader.scorer.calibrator = grader.scorer.calibrator[:6].clone()
    grader.scorer.config.confidence_features = 6

    restored = TrainedGrader.from_bytes(grader.to_bytes())

    confidence = restored.scorer(probe).confidence
    assert confidence.shape == (2,) and bool(((confidence >= 0) & (confidence <= 1)).all())
    assert torch.allclose(confidence, grader.scorer(probe).confidence)


def test_the_confidence_model_puts_grades_that_miss_far_below_grades_that_miss_by_one():
    # Three kinds of answer, told apart by one input: always right (x = 0); right half the
    # time, else one level off (x = 0.5); right half the time, else two levels off (x = 1).
    kinds = np.repeat([0.0, 0.5, 1.0], 200)
    gold = np.zeros(len(kinds), dtype=np.int64)
    misses = np.tile([0, 1], len(kinds) // 2) * np.select([kinds == 0.5, kinds == 1.0], [1, 2], 0)
    levels = gold + misses
    features = torch.stack([torch.ones(len(kinds)), torch.tensor(kinds, dtype=torch.float32)], 1)

    confidence = confidence_of(features, fit_confidence_model(features, levels, gold)).numpy()

    sure, near, far = (confidence[kinds == kind].mean() for kind in (0.0, 0.5, 1.0))
    assert sure > near > far  # the same share right, but a miss of two costs a QWK four times
    # Still the probability that a grade is the teacher's, over all of them.
    assert confidence.mean() == pytest.approx((levels == gold).mean(), abs=0.02)
    # Nothing tells the answers apart: one confidence for all, the share that was right.
    flat = torch.ones(len(kinds), 1)
    alike = confidence_of(flat, fit_confidence_model(flat, levels, gold)).numpy()
    assert np.allclose(alike, (levels == gold).mean(), atol=0.01)


def test_scorer_is_registered_by_name():
    assert "item-scorer" in model_names("grader")
    assert isinstance(build_model("item-scorer", {"n_levels": 3}), ItemScorer)


def test_grader_trained_with_an_encoder_refuses_to_score_without_it():
    class FakeEncoder:
        name = "fake"
        dim = 4

        def encode(self, texts):
            return torch.nn.functional.normalize(
                torch.tensor([[len(t), 1.0, t.count("e"), 2.0] for t in texts]), dim=1
            )

    texts, scores = make_answers()
    grader = train_grader(
        texts, scores, list(range(len(texts))), min_score=0, max_score=2, encoder=FakeEncoder()
    )

    assert len(grader.grade(["plants make sugar"], encoder=FakeEncoder())) == 1
    with pytest.raises(GraderUnavailable, match="fake"):
        grader.grade(["plants make sugar"])


def test_training_refuses_too_few_answers_and_scores_off_the_scale():
    with pytest.raises(ValueError, match="at least 10"):
        train_grader(["a"] * 3, [0, 1, 1], [1, 2, 3], min_score=0, max_score=1)
    with pytest.raises(ValueError, match="outside"):
        train_grader(["a"] * 10, [0] * 9 + [5], list(range(10)), min_score=0, max_score=1)


def test_score_levels_follow_the_teachers_steps():
    assert score_levels(0, 3) == 4
    assert score_levels(0, 1, [0, 0.5, 1]) == 3
    assert score_levels(0, 60) == 61
    assert score_levels(0, 2, [0.25, 1]) == 9


def test_thresholds_never_lose_qwk_against_midpoints():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 4, 300)
    raw = np.clip(gold / 3 + rng.normal(0.08, 0.15, 300), 0, 1)  # biased upwards
    midpoint = np.searchsorted((np.arange(3) + 0.5) / 3, raw, side="right")

    thresholds = fit_thresholds(raw, gold, 4)

    fitted = np.searchsorted(thresholds, raw, side="right")
    assert np.all(np.diff(thresholds) > 0)
    assert quadratic_weighted_kappa(gold, fitted, 4) >= quadratic_weighted_kappa(gold, midpoint, 4)


def test_share_thresholds_give_each_level_the_teachers_share():
    rng = np.random.default_rng(1)
    gold = rng.choice(4, size=400, p=[0.1, 0.2, 0.3, 0.4])
    raw = np.clip(gold / 3 + rng.normal(0.1, 0.2, 400), 0, 1)  # biased and noisy

    levels = np.searchsorted(share_thresholds(raw, gold, 4), raw, side="right")

    teacher = np.bincount(gold, minlength=4) / 400
    assert np.abs(np.bincount(levels, minlength=4) / 400 - teacher).max() < 0.01
    # A level the teacher never gave is never predicted.
    never = share_thresholds(raw, np.where(gold == 2, 1, gold), 4)
    assert 2 not in np.searchsorted(never, raw, side="right")


def test_the_search_judges_a_ridge_by_its_cross_fitted_qwk_not_by_midpoint_rounding():
    # A middle level most answers get, and one view that ranks the answers well: a strong ridge
    # pulls every prediction towards the mean, so that rounding at the midpoints would call
    # nearly all of them "1", however well they are ordered.
    rng = np.random.default_rng(3)
    gold = rng.choice(3, size=400, p=[0.2, 0.6, 0.2])
    signal = gold + rng.normal(0, 0.6, 400)
    features = torch.tensor(
        np.column_stack([signal, rng.normal(size=(400, 5))]), dtype=torch.float64
    )
    grams = {"shape": features @ features.T / 6}
    y = gold / 2
    config = ScorerConfig(n_levels=3, max_score=2.0, search_passes=0)

    weights, ridge, qwk, history, _ = _search(grams, {}, 0.0, y, gold, 3, config)

    centred = torch.tensor(y - y.mean(), dtype=torch.float64)
    eigenvalues, eigenvectors = _eigen(_kernel(grams, {}, weights, 0.0))
    loo, _ = _loo(eigenvalues, eigenvectors, eigenvectors.T @ centred, centred, ridge)
    loo = loo.numpy() + y.mean()
    rule = config.search_threshold_rule
    assert qwk == pytest.approx(cross_fitted_qwk(loo, gold, 3, 150, rule=rule))
    assert history[0]["qwk"] == pytest.approx(qwk, abs=1e-4)
    # Every other ridge of the grid does no better by the same measure.
    for other in config.ridge_grid:
        held_out, _ = _loo(eigenvalues, eigenvectors, eigenvectors.T @ centred, centred, other)
        held_out = held_out.numpy() + y.mean()
        assert cross_fitted_qwk(held_out, gold, 3, 150, rule=rule) <= qwk + 1e-12


def test_the_fit_records_the_boundary_rule_it_chose_on_held_out_answers():
    texts = (GOOD + PARTIAL + WRONG) * 15
    scores = ([2.0] * 4 + [1.0] * 4 + [0.0] * 4) * 15
    grader = train_grader(texts, scores, list(range(len(texts))), min_score=0, max_score=2)
    assert grader.metrics["threshold_rule"] in {"qwk", "shares", "mixed"}
    few = train_grader(texts[:24], scores[:24], list(range(24)), min_score=0, max_score=2)
    assert few.metrics["threshold_rule"] == "midpoints"


def test_the_random_check_is_a_fixed_share_of_answers_drawn_by_their_key():
    drawn = [key for key in range(20_000) if in_audit_sample(key, 0.1)]

    assert 0.09 < len(drawn) / 20_000 < 0.11
    assert drawn == [key for key in range(20_000) if in_audit_sample(key, 0.1)]
    assert set(drawn) >= {k for k in range(20_000) if in_audit_sample(k, 0.05)}
    assert not any(in_audit_sample(key, 0.0) for key in range(1_000))
    # An answer of the check is never released, however good the grader and the grade.
    gate = release_gate(
        [{"confidence": 0.0, "qwk": 1.0, "share": 1.0}], min_qwk=0.0, min_confidence=0.0
    )
    assert gate.allows(1.0)
    assert not gate.allows(1.0, audited=True)
    # ... and it comes first in the queue, however sure the grader is of it.
    assert review_priority(confidence=0.99, nearest_similarity=0.99, audited=True) == 1.0


def test_the_validated_qwk_is_read_on_the_random_check_once_it_holds_enough_answers():
    texts = (GOOD + PARTIAL + WRONG) * 15
    clean = ([2.0] * 4 + [1.0] * 4 + [0.0] * 4) * 15
    audit = np.arange(len(texts)) % 3 == 0  # 60 answers
    # The answers outside the check are the queue's hard cases: every other copy of each is
    # scored the other way.
    scores = [
        score if checked or index // 12 % 2 else 2.0 - score
        for index, (score, checked) in enumerate(zip(clean, audit, strict=True))
    ]

    _, on_check = fit_item_scorer(texts, scores, min_score=0, max_score=2, n_levels=3, audit=audit)
    _, on_all = fit_item_scorer(texts, scores, min_score=0, max_score=2, n_levels=3)
    too_few = audit & (np.arange(len(texts)) < 120)  # 40 answers
    _, fallback = fit_item_scorer(
        texts, scores, min_score=0, max_score=2, n_levels=3, audit=too_few
    )

    assert (on_check.validated_on, on_check.validated_on_audit) == (60, True)
    assert on_check.validated_qwk > on_all.validated_qwk + 0.2
    assert (fallback.validated_on, fallback.validated_on_audit) == (180, False)
    assert fallback.validated_qwk == on_all.validated_qwk
    with pytest.raises(ValueError, match="audit"):
        fit_item_scorer(texts, scores, min_score=0, max_score=2, n_levels=3, audit=audit[:5])


def test_quadratic_weighted_kappa_known_values():
    assert quadratic_weighted_kappa([0, 1, 2], [0, 1, 2], 3) == 1.0
    assert quadratic_weighted_kappa([0, 1, 2, 0], [2, 1, 0, 2], 3) < 0
    # Worked example: one disagreement of one level among four answers.
    assert quadratic_weighted_kappa([0, 0, 1, 1], [0, 1, 1, 1], 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        quadratic_weighted_kappa([0, 3], [0, 1], 3)


def test_expected_calibration_error():
    assert expected_calibration_error([1, 1, 0, 0], [1.0, 1.0, 0.0, 0.0]) == 0.0
    assert expected_calibration_error([0, 0], [0.95, 0.95]) == pytest.approx(0.95)


def test_release_needs_a_proven_model_and_a_confident_prediction():
    def whole(qwk):  # a grader of before release curves: one point, all its grades
        curve = release_curve_of({"validated_qwk": qwk})
        return release_gate(curve, min_qwk=0.8, min_confidence=0.85)

    assert whole(0.85).allows(0.9)
    assert not whole(0.79).allows(0.99)
    assert not whole(0.95).allows(0.84)
    assert not whole(None).allows(0.99)
    assert not whole(float("nan")).allows(0.99)
    assert not whole(0.95).allows(float("nan"))
    assert not release_gate([], min_qwk=0.8, min_confidence=0.85).allows(0.99)


def test_a_fair_grader_releases_only_the_grades_it_is_sure_of_that_proved_themselves():
    # Over all its grades 0.70; its surest 40 % agreed at 0.90, but that is known only to
    # within 0.86; its surest 20 % at 0.95, at least 0.88.
    curve = [
        {"confidence": 0.9, "qwk": 0.95, "qwk_low": 0.88, "share": 0.2},
        {"confidence": 0.8, "qwk": 0.90, "qwk_low": 0.86, "share": 0.4},
        {"confidence": 0.5, "qwk": 0.70, "qwk_low": 0.64, "share": 1.0},
    ]

    def needed(min_qwk, min_confidence):
        return release_gate(curve, min_qwk=min_qwk, min_confidence=min_confidence).confidence

    assert needed(0.85, 0.5) == 0.8
    assert needed(0.87, 0.5) == 0.9
    assert needed(0.85, 0.85) == 0.85  # the floor
    assert needed(0.9, 0.5) is None  # bounds decide
    assert needed(0.6, 0.5) == 0.5
    gate = release_gate(curve, min_qwk=0.85, min_confidence=0.5)
    assert gate.point == curve[1]
    assert gate.allows(0.8)
    assert not gate.allows(0.79)
    assert not gate.allows(0.95, audited=True)


def test_the_gate_walks_down_from_the_surest_share_and_stops_at_the_first_that_fails():
    # The surest 10 % missed the bar (a small share, a wide interval); the 30 % passed only by
    # the luck of its draw, as one of many points would.
    curve = [
        {"confidence": 0.6, "qwk": 0.85, "qwk_low": 0.81, "share": 0.3},
        {"confidence": 0.95, "qwk": 0.93, "qwk_low": 0.78, "share": 0.1},
        {"confidence": 0.5, "qwk": 0.70, "qwk_low": 0.64, "share": 1.0},
    ]
    assert release_gate(curve, min_qwk=0.8, min_confidence=0.5).point is None
    # Passing at the top, failing at 20 %: the gate opens at 10 %, whatever passes below.
    curve[1]["qwk_low"] = 0.84
    middle = {"confidence": 0.8, "qwk": 0.86, "qwk_low": 0.79, "share": 0.2}
    gate = release_gate([*curve, middle], min_qwk=0.8, min_confidence=0.5)
    assert gate.point == curve[1] and gate.confidence == 0.95
    # An unknown agreement stops the walk too.
    unknown = {**middle, "qwk": None, "qwk_low": None}
    assert release_gate([*curve, unknown], min_qwk=0.8, min_confidence=0.5).confidence == 0.95
    assert release_gate(curve, min_qwk=0.8, min_confidence=0.5).confidence == 0.6


def test_the_release_curve_measures_the_surest_grades_first_with_a_lower_bound():
    rng = np.random.default_rng(0)
    n = 300
    gold = rng.integers(0, 3, n)
    confidence = rng.random(n)
    # Sure grades are right, unsure ones are right half the time.
    levels = np.where((confidence > 0.5) | (rng.random(n) < 0.5), gold, (gold + 1) % 3)

    curve = release_curve(confidence, gold, levels, 3)

    # Twentieths of 300 answers, from the first that holds 30.
    assert [point["share"] for point in curve] == [round(0.05 * k, 2) for k in range(2, 21)]
    assert [point["answers"] for point in curve] == [15 * k for k in range(2, 21)]
    assert curve[0]["qwk"] == 1.0 and curve[0]["exact"] == 1.0
    assert curve[-1]["qwk"] == pytest.approx(quadratic_weighted_kappa(gold, levels, 3), abs=1e-4)
    assert curve[-1]["confidence"] == pytest.approx(confidence.min(), abs=1e-4)
    assert all(point["qwk_low"] <= point["qwk"] for point in curve)
    assert curve[-1]["qwk"] - curve[-1]["qwk_low"] < 0.15
    assert curve[7]["qwk"] > curve[-1]["qwk"] + 0.2
    # Fewer than 30 answers say too little about a share of them: only the whole, whose
    # bound is wide.
    few = release_curve(confidence[:25], gold[:25], levels[:25], 3)
    assert [(point["share"], point["answers"]) for point in few] == [(1.0, 25)]
    assert few[0]["qwk"] - few[0]["qwk_low"] > curve[-1]["qwk"] - curve[-1]["qwk_low"]


def test_subset_agreement_is_kappa_on_the_whole_and_does_not_punish_a_subset_of_one_level():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 4, 2000)
    predicted = np.where(rng.random(2000) < 0.8, gold, rng.integers(0, 4, 2000))
    everything = np.ones(2000, dtype=bool)

    whole, whole_low = subset_agreement(gold, predicted, 4, everything)
    few = np.arange(2000) < 100
    _, few_low = subset_agreement(gold, predicted, 4, few)

    assert whole == pytest.approx(quadratic_weighted_kappa(gold, predicted, 4))
    assert few_low < whole_low < whole
    assert whole - whole_low < 0.03
    assert subset_agreement(gold, predicted, 4, few) == subset_agreement(gold, predicted, 4, few)
    # Sure zeros, all right: perfect, where the kappa of the subset alone reads chance.
    zeros = (gold == 0) & (predicted == 0)
    assert subset_agreement(gold, predicted, 4, zeros) == (1.0, 1.0)
    assert quadratic_weighted_kappa(gold[zeros], predicted[zeros], 4) == 1.0
    mostly_zeros = zeros | (np.arange(2000) == np.flatnonzero((gold == 1) & (predicted == 0))[0])
    assert quadratic_weighted_kappa(gold[mostly_zeros], predicted[mostly_zeros], 4) == 0.0
    assert subset_agreement(gold, predicted, 4, mostly_zeros)[0] > 0.99
    # Undefined: nothing inside, or one level on both sides.
    assert np.isnan(subset_agreement(gold, predicted, 4, np.zeros(2000, dtype=bool))[0])
    assert np.isnan(subset_agreement([1, 1, 1], [1, 1, 1], 4, [True, True, True])[1])
    with pytest.raises(ValueError):
        subset_agreement([0, 5], [0, 1], 4, [True, True])
    with pytest.raises(ValueError, match="mask"):
        subset_agreement([0, 1], [0, 1], 4, [True])


def test_a_prior_keeps_a_small_flawless_subset_from_vouching_for_perfect_agreement():
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 4, 2000)
    predicted = np.where(rng.random(2000) < 0.6, gold, rng.integers(0, 4, 2000))
    whole = quadratic_weighted_kappa(gold, predicted, 4)
    right = np.flatnonzero(gold == predicted)
    small = np.zeros(2000, dtype=bool)
    small[right[:30]] = True  # 30 answers, every one right
    large = np.zeros(2000, dtype=bool)
    large[right[:600]] = True

    # Without a prior the bootstrap reads 30 right answers as certain perfection.
    assert subset_agreement(gold, predicted, 4, small) == (1.0, 1.0)
    estimate, low = subset_agreement(gold, predicted, 4, small, prior=10)
    assert estimate == 1.0  # the estimate is the subset's own
    # 10 answers of the whole's mean miss among 40: a quarter of the whole's disagreement.
    assert low == pytest.approx(1 - (1 - whole) * 10 / 40, abs=1e-9)
    # A large subset outweighs the prior.
    _, large_low = subset_agreement(gold, predicted, 4, large, prior=10)
    assert large_low > 1 - (1 - whole) * 10 / 600
    # A prior of 0 is the default: the plain bootstrap, as the first assertion read it.
    mixed = np.arange(2000) < 300
    assert subset_agreement(gold, predicted, 4, mixed, prior=0) == subset_agreement(
        gold, predicted, 4, mixed
    )
    # A subset better than the whole is read a little worse with the prior.
    assert large_low < subset_agreement(gold, predicted, 4, large)[1]


def test_a_grader_records_its_release_curve_on_the_answers_it_was_validated_on():
    texts = (GOOD + PARTIAL + WRONG) * 15
    scores = ([2.0] * 4 + [1.0] * 4 + [0.0] * 4) * 15

    grader = train_grader(texts, scores, list(range(len(texts))), min_score=0, max_score=2)

    curve = grader.metrics["release_curve"]
    assert curve and curve[-1]["share"] == 1.0 and curve[-1]["answers"] == len(texts)
    assert curve[-1]["qwk"] == pytest.approx(grader.metrics["validated_qwk"], abs=1e-4)
    assert release_curve_of(grader.metrics) == curve


def test_the_release_curve_counts_what_earlier_graders_released():
    rng = np.random.default_rng(2)
    n = 300
    gold = rng.integers(0, 3, n)
    confidence = rng.random(n)
    levels = np.where(confidence > 0.3, gold, (gold + 1) % 3)
    alone = release_curve(confidence, gold, levels, 3)

    # Earlier releases that were all right: the whole agrees better than these answers alone.
    right = rng.integers(0, 3, 100)
    with_right = release_curve(confidence, gold, levels, 3, before_gold=right, before_levels=right)
    assert with_right[-1]["qwk"] > alone[-1]["qwk"]
    # None: the same curve.
    empty = np.zeros(0, dtype=np.int64)
    assert release_curve(confidence, gold, levels, 3, before_gold=empty, before_levels=empty) == (
        alone
    )
    # Earlier releases two levels off: every point now says what the students saw in all, the
    # share as before (of these answers), the agreement far lower.
    off = np.full(100, 0), np.full(100, 2)
    after = release_curve(confidence, gold, levels, 3, before_gold=off[0], before_levels=off[1])
    assert [p["share"] for p in after] == [p["share"] for p in alone]
    assert [p["exact"] for p in after] == [p["exact"] for p in alone]
    assert all(a["qwk"] < p["qwk"] - 0.3 for a, p in zip(after, alone, strict=True))
    assert alone[0]["qwk_low"] >= 0.8 > max(point["qwk_low"] for point in after)
    assert release_gate(after, min_qwk=0.8, min_confidence=0.0).confidence is None


def test_released_sample_takes_what_each_gate_let_through_first_come_first_kept():
    curve = [{"confidence": 0.9, "qwk": 0.95, "qwk_low": 0.85, "share": 0.5}]
    earlier = {
        "n_levels": 3,
        "release_curve": curve,
        # Key 7 was released by a grader before this one, at the teacher's 2 as 1.
        "released_before": [[7, 2, 1], [["q", 1], 0, 0]],
        "validation_grades": [
            [5, 2, 2, 0.95],  # sure: released
            [6, 1, 0, 0.5],  # unsure: left for the next grader
            [7, 2, 2, 0.99],  # released before, by the earlier grader: its grade stays
            [8, 0, 1, 0.9],  # at the gate's confidence: released
        ],
    }

    sample = released_sample(earlier, min_qwk=0.8, min_confidence=0.0)

    assert sample.n_levels == 3
    assert sample.grades == {7: (2, 1), ("q", 1): (0, 0), 5: (2, 2), 8: (0, 1)}
    # Under a higher bar this grader's gate is shut: only the earlier releases remain.
    assert released_sample(earlier, min_qwk=0.9, min_confidence=0.0).grades == {
        7: (2, 1),
        ("q", 1): (0, 0),
    }
    # Nor may the item's least confidence be passed over.
    assert 8 not in released_sample(earlier, min_qwk=0.8, min_confidence=0.92).grades
    # A grader from before these records: nothing known, nothing counted.
    assert released_sample({"release_curve": curve}, min_qwk=0.8, min_confidence=0.0).grades == {}
    # Answers of the check it scored while they waited count as its validation grades do.
    waited = released_sample(
        earlier,
        min_qwk=0.8,
        min_confidence=0.0,
        scored_while_waiting=[(9, 1, 1, 0.95), (10, 2, 0, 0.2), (5, 0, 0, 0.99)],
    )
    assert waited.grades == {**sample.grades, 9: (1, 1)}


def test_released_by_graders_joins_every_served_graders_releases_first_kept():
    gate = [{"confidence": 0.5, "qwk": 0.95, "qwk_low": 0.85, "share": 0.5}]
    older = {"n_levels": 3, "release_curve": gate, "validation_grades": [[1, 2, 2, 0.9]]}
    # Rolled back after releasing 2 and 3; it had 1 from the older one.
    rolled_back = {
        "n_levels": 3,
        "release_curve": gate,
        "released_before": [[1, 2, 2]],
        "validation_grades": [[2, 1, 1, 0.9], [3, 0, 1, 0.6], [4, 0, 0, 0.1], [1, 2, 0, 0.9]],
    }
    # A grader of the item when its scale had two levels: not comparable.
    other_scale = {"n_levels": 2, "release_curve": gate, "validation_grades": [[9, 1, 1, 0.9]]}

    # The older one also scored answer 5 of the random check while it waited, sure enough to
    # have released it were it not in the check, and answer 6 not sure enough.
    waited = [(5, 1, 2, 0.7), (6, 0, 0, 0.3)]

    joined = released_by_graders(
        [(other_scale, []), (older, waited), (rolled_back, []), (older, [])],
        min_qwk=0.8,
        min_confidence=0.0,
    )

    assert joined == ReleasedSample(n_levels=3, grades={1: (2, 2), 5: (1, 2), 2: (1, 1), 3: (0, 1)})
    assert released_by_graders([], min_qwk=0.8, min_confidence=0.0) is None


def test_a_retrained_grader_measures_its_release_curve_with_what_was_released_before():
    texts = (GOOD + PARTIAL + WRONG) * 15
    scores = ([2.0] * 4 + [1.0] * 4 + [0.0] * 4) * 15
    keys = [f"r{i}" for i in range(len(texts))]
    first = train_grader(texts, scores, keys, min_score=0, max_score=2)
    grades = first.metrics["validation_grades"]
    # Every answer it was validated on, out of sample, by its key.
    assert [row[0] for row in grades] == keys
    assert all(0 <= row[1] <= 2 and 0 <= row[2] <= 2 and 0 <= row[3] <= 1 for row in grades)
    assert "released_before" not in first.metrics

    # Say the earlier graders released the first 60 answers, 40 of them two levels off.
    before = {key: (2, 0) if i < 40 else (1, 1) for i, key in enumerate(keys[:60])}

    def after(n_levels: int) -> TrainedGrader:
        released = ReleasedSample(n_levels=n_levels, grades=before)
        return train_grader(texts, scores, keys, min_score=0, max_score=2, released_before=released)

    retrained = after(3)

    curve = retrained.metrics["release_curve"]
    assert retrained.metrics["released_before_answers"] == 60
    assert retrained.metrics["released_before"] == [[k, g, lv] for k, (g, lv) in before.items()]
    # Measured on the 120 answers not released before, each point with the 60 releases.
    assert curve[-1]["answers"] == len(texts) - 60
    assert max(point["qwk"] for point in curve) < first.metrics["release_curve"][0]["qwk"] - 0.2
    assert release_gate(curve, min_qwk=0.8, min_confidence=0.0).confidence is None
    # The validated QWK is still the grader's own, over all the answers it was validated on.
    assert retrained.metrics["validated_qwk"] == first.metrics["validated_qwk"]
    # Releases on another scale cannot be compared: left out.
    other_scale = after(5)
    assert other_scale.metrics["release_curve"] == first.metrics["release_curve"]
    assert "released_before" not in other_scale.metrics


def test_with_a_random_check_only_a_grader_measured_on_it_may_release():
    texts = (GOOD + PARTIAL + WRONG) * 15
    scores = ([2.0] * 4 + [1.0] * 4 + [0.0] * 4) * 15
    keys = list(range(len(texts)))
    few = [i % 10 == 0 for i in keys]  # 18 answers in the check: too few to measure on

    waiting = train_grader(
        texts, scores, keys, min_score=0, max_score=2, audit=few, random_check=True
    )

    assert waiting.metrics["validated_on"] == "all teacher scores"
    assert waiting.metrics["release_curve"] == []
    assert waiting.metrics["release_waits"] == (
        "measured on 180 answers that are not a random check: its grades are released once "
        "50 answers of the random check, not all of one score, are scored"
    )
    # Without a random check the teacher's scores are all there is to measure on.
    unchecked = train_grader(texts, scores, keys, min_score=0, max_score=2, audit=few)
    assert unchecked.metrics["release_curve"] and "release_waits" not in unchecked.metrics
    # Enough answers in the check: measured on them, released by them.
    enough = [i % 3 == 0 for i in keys]
    checked = train_grader(
        texts, scores, keys, min_score=0, max_score=2, audit=enough, random_check=True
    )
    assert checked.metrics["validated_on"] == "random check"
    assert checked.metrics["release_curve"][-1]["answers"] == 60
    assert [row[0] for row in checked.metrics["validation_grades"]] == keys[::3]


def test_a_grader_that_releases_nothing_passes_on_what_was_released_before():
    texts = [f"answer number {i} about plants" for i in range(12)]
    before = ReleasedSample(n_levels=3, grades={"a": (2, 2), "b": (1, 0)})

    # One score level: no validated QWK, no curve, nothing released; the earlier releases stay.
    grader = train_grader(
        texts, [1.0] * 12, list(range(12)), min_score=0, max_score=2, released_before=before
    )

    assert grader.metrics["release_curve"] == []
    assert grader.metrics["released_before"] == [["a", 2, 2], ["b", 1, 0]]
    sample = released_sample(grader.metrics, min_qwk=0.0, min_confidence=0.0)
    assert sample.grades == before.grades


def test_review_priority_puts_uncertain_and_novel_answers_first():
    certain_known = review_priority(confidence=0.95, nearest_similarity=0.9)
    uncertain_known = review_priority(confidence=0.4, nearest_similarity=0.9)
    uncertain_novel = review_priority(confidence=0.4, nearest_similarity=0.1)
    assert certain_known < uncertain_known < uncertain_novel
    assert review_priority(confidence=None, nearest_similarity=None) == 1.0


def test_a_grader_trained_on_one_score_level_is_never_trusted():
    texts = [f"answer number {i} about plants" for i in range(12)]

    grader = train_grader(texts, [1.0] * 12, list(range(12)), min_score=0, max_score=2)

    assert grader.metrics["validated_qwk"] is None
    prediction = grader.grade(["plants"])[0]
    assert grader.metrics["release_curve"] == []
    gate = release_gate(release_curve_of(grader.metrics), min_qwk=0.0, min_confidence=0.0)
    assert not gate.allows(prediction.confidence)


# ----- the bent (polynomial) kernel -------------------------------------------------------------


def either_but_not_both(n: int = 200, seed: int = 0) -> tuple[list[str], list[float]]:
    """Answers scored 1 when they name exactly one of two causes and 0 for none or both (the
    rubric's "pick one"): no weight per word can score that, weights per pair of words can."""
    rng = np.random.default_rng(seed)
    filler = ["the", "because", "water", "heat", "so", "it", "then", "rises", "falls", "air"]
    texts, scores = [], []
    for i in range(n):
        words = list(rng.choice(filler, 6))
        first, second = i % 4 in (1, 3), i % 4 in (2, 3)
        # A cause or a word of the same length in its place: the length says nothing.
        words.append("evaporation" if first else "temperature")
        words.append("condensation" if second else "stratosphere")
        rng.shuffle(words)
        texts.append(" ".join(words))
        scores.append(1.0 if first != second else 0.0)
    return texts, scores


def test_the_search_bends_the_kernel_where_words_count_together():
    texts, scores = either_but_not_both()

    _, bent = fit_item_scorer(texts, scores, min_score=0, max_score=1, n_levels=2)
    _, straight = fit_item_scorer(
        texts, scores, min_score=0, max_score=1, n_levels=2, config=ScorerConfig(poly_gammas=())
    )

    assert bent.poly_gamma > 0
    assert straight.poly_gamma == 0
    assert bent.validated_qwk > 0.99
    assert straight.validated_qwk < 0.95


def test_a_bent_scorer_survives_a_checkpoint_round_trip_and_its_phrases_add_up():
    texts, scores = either_but_not_both()
    grader = train_grader(texts, scores, list(range(len(texts))), min_score=0, max_score=1)
    assert grader.metrics["poly_gamma"] > 0
    probe = ["heat so evaporation", "evaporation then condensation", "the air rises"]

    restored = TrainedGrader.from_bytes(grader.to_bytes())

    before, after = grader.scorer(probe), restored.scorer(probe)
    assert torch.allclose(before.raw, after.raw, atol=1e-6)
    assert [p.score for p in grader.grade(probe)] == [p.score for p in restored.grade(probe)]
    # Each n-gram's weight in this answer times its value, summed, is the score less the bias
    # and the surface measures: the phrases explain the whole of what the n-grams did.
    scorer = restored.scorer
    for text, raw in zip(probe, before.raw.tolist(), strict=True):
        x_char, x_word = scorer._tfidf([text])
        weight_char, weight_word = scorer.view_weights(x_char, x_word)
        ngrams = float(torch.sparse.mm(x_char, weight_char[:, None]).sum()) + float(
            torch.sparse.mm(x_word, weight_word[:, None]).sum()
        )
        shape = float(scorer._shape([text], x_char, x_word)[0] @ scorer.weight_shape)
        assert ngrams + shape + float(scorer.bias) == pytest.approx(raw, abs=1e-4)


def test_the_kernel_stays_straight_for_long_texts_or_few_answers():
    texts, scores = either_but_not_both()

    _, too_long = fit_item_scorer(
        texts, scores, min_score=0, max_score=1, n_levels=2, config=ScorerConfig(poly_max_nnz=10)
    )
    _, too_few = fit_item_scorer(texts[:100], scores[:100], min_score=0, max_score=1, n_levels=2)

    assert too_long.poly_gamma == 0
    assert too_few.poly_gamma == 0


def test_the_random_check_is_graded_by_settings_chosen_without_it():
    # Scores that the answers do not predict at all: every setting the search tries is as
    # good as another, and the best of some hundred reads above chance on the answers it was
    # chosen on. The random check must read what a new answer would get: chance.
    rng = np.random.default_rng(11)
    words = [f"w{i}" for i in range(60)]
    fits = []
    for _ in range(4):
        texts = [" ".join(rng.choice(words, size=8)) for _ in range(200)]
        scores = rng.integers(0, 3, size=200).astype(float)
        audit = np.arange(200) < 150
        fits.append(
            fit_item_scorer(texts, scores, min_score=0, max_score=2, n_levels=3, audit=audit)[1]
        )

    chosen_on_all = np.mean([report.selection_qwk for report in fits])
    on_check = np.mean([report.validated_qwk for report in fits])
    assert all(report.validated_on_audit for report in fits)
    assert chosen_on_all > 0.04
    assert abs(on_check) < 0.04
    assert on_check < chosen_on_all - 0.03
    # The blend is measured on the same grades of the check; elsewhere the usual ones.
    for report in fits:
        assert not np.array_equal(report.held_out_loo[:150], report.loo[:150])
        assert np.array_equal(report.held_out_loo[150:], report.loo[150:])
