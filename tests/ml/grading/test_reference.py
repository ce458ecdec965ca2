"""The cold-start reference grader on tiny synthetic items: it must rank the answers of an item
it never saw by how much of the reference answer they hold."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from edu_dl.ml.grading.pipeline import GraderUnavailable
from edu_dl.ml.grading.reference import (
    EXEMPLAR_FEATURES,
    PAIR_FEATURES,
    Exemplar,
    HeldOutItem,
    ReferenceConfig,
    ReferenceExample,
    ReferenceScorer,
    TrainedReferenceGrader,
    exemplar_features,
    feature_names,
    fit_decoding,
    train_reference_grader,
)
from edu_dl.ml.metrics import quadratic_weighted_kappa
from edu_dl.ml.registry import build_model, model_names

SMALL = ReferenceConfig(hidden_sizes=(16, 8), epochs=120, patience=30, n_buckets=2**14, seed=3)
FILLER = ["the", "answer", "is", "that", "we", "think", "it", "was", "because", "of", "this"]


def pseudo_words(rng: np.random.Generator, count: int) -> list[str]:
    letters = np.array(list("bcdfghklmnprstvz"))
    vowels = np.array(list("aeiou"))
    return [
        "".join(
            (letters if position % 2 == 0 else vowels)[
                rng.integers(0, 16 if position % 2 == 0 else 5)
            ]
            for position in range(int(rng.integers(5, 9)))
        )
        for _ in range(count)
    ]


def make_item(key: str, seed: int, per_level: int = 4) -> list[ReferenceExample]:
    """An item on a 0-2 scale: 2 for most reference words, 1 for a few, 0 for other words."""
    rng = np.random.default_rng(seed)
    topic = pseudo_words(rng, 8)
    other = pseudo_words(rng, 8)
    question = f"explain how {topic[0]} relates to {other[0]}"
    reference = " ".join(topic)
    examples = []
    for score, share in ((2.0, 0.8), (1.0, 0.35), (0.0, 0.0)):
        for _ in range(per_level):
            n_topic = round(share * len(topic))
            words = list(rng.choice(topic, n_topic, replace=False)) + list(
                rng.choice(other + FILLER, 6 - n_topic // 2, replace=True)
            )
            rng.shuffle(words)
            examples.append(
                ReferenceExample(
                    item_key=key,
                    question=question,
                    reference_answer=reference,
                    response=" ".join(words),
                    score=score,
                    min_score=0.0,
                    max_score=2.0,
                    n_levels=3,
                )
            )
    return examples


def training_examples() -> list[ReferenceExample]:
    return [e for i in range(6) for e in make_item(f"item-{i}", seed=i)]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors gain nothing from threads, which only wait on each other on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def grader() -> TrainedReferenceGrader:
    return train_reference_grader(training_examples(), config=SMALL)


def grade_item(grader: TrainedReferenceGrader, examples: list[ReferenceExample], **kwargs):
    first = examples[0]
    return grader.grade(
        question=first.question,
        reference_answer=first.reference_answer,
        texts=[e.response for e in examples],
        min_score=0.0,
        max_score=2.0,
        n_levels=3,
        **kwargs,
    )


class HashEncoder:
    """A stand-in sentence encoder: unit vectors of hashed words."""

    def __init__(self, name: str = "hash-encoder", dim: int = 16):
        self.name, self.dim = name, dim

    def encode(self, texts: list[str]) -> torch.Tensor:
        vectors = torch.zeros(len(texts), self.dim)
        for i, text in enumerate(texts):
            for word in text.split():
                vectors[i, sum(map(ord, word)) % self.dim] += 1.0
        return torch.nn.functional.normalize(vectors + 1e-3, dim=1)


def test_an_unseen_items_good_answers_score_above_its_bad_ones(grader):
    unseen = make_item("unseen", seed=99)

    predictions = grade_item(grader, unseen, explain=False)

    scores = np.array([p.score for p in predictions])
    gold = np.array([e.score for e in unseen])
    assert scores[gold == 2.0].mean() > scores[gold == 1.0].mean() > scores[gold == 0.0].mean()
    assert set(scores) <= {0.0, 1.0, 2.0}


def test_metrics_report_held_out_items(grader):
    assert grader.metrics["n_items"] == 6
    assert grader.metrics["n_train"] == 72
    assert grader.metrics["validated_items"] == 2
    assert -1.0 <= grader.metrics["validated_qwk"] <= 1.0
    assert 0.0 <= grader.metrics["ece"] <= 1.0
    assert grader.encoder_name == ""


def test_shapes(grader):
    unseen = make_item("unseen", seed=99)
    responses = [e.response for e in unseen]

    features = grader.scorer.featurise(
        question=unseen[0].question,
        reference_answer=unseen[0].reference_answer,
        responses=responses,
    )
    output = grader.scorer(features, torch.rand(len(responses)))

    assert features.shape == (len(responses), len(PAIR_FEATURES))
    assert output.raw.shape == output.logits.shape == (len(responses),)
    assert output.loss.shape == ()
    assert bool(((output.raw >= 0) & (output.raw <= 1)).all())


def test_confidence_is_a_probability_and_explanations_name_reference_words(grader):
    unseen = make_item("unseen", seed=99)
    reference_words = set(unseen[0].reference_answer.split())

    predictions = grade_item(grader, unseen)

    assert all(0.0 <= p.confidence <= 1.0 for p in predictions)
    for prediction, example in zip(predictions, unseen, strict=True):
        assert prediction.similar == []
        for phrase in prediction.phrases:
            assert phrase["text"] in reference_words
            assert phrase["found"] == (phrase["text"] in example.response.split())
            assert phrase["weight"] <= 0.0 or phrase["found"]


def test_explain_gives_matched_missing_and_feature_effects(grader):
    unseen = make_item("unseen", seed=99)

    explained = grader.explain(
        question=unseen[0].question,
        reference_answer=unseen[0].reference_answer,
        texts=[unseen[0].response],
        min_score=0.0,
        max_score=2.0,
        n_levels=3,
    )

    assert set(explained[0]) == {"raw", "matched", "missing", "features"}
    assert set(explained[0]["features"]) == set(PAIR_FEATURES)
    assert explained[0]["matched"]


def test_a_score_does_not_depend_on_the_other_answers_in_the_batch(grader):
    unseen = make_item("unseen", seed=99)

    alone = grade_item(grader, unseen[:1], explain=False)[0]
    together = grade_item(grader, unseen, explain=False)[0]

    assert alone == together


def test_an_empty_answer_gets_the_bottom_of_the_scale(grader):
    unseen = make_item("unseen", seed=99)

    prediction = grader.grade(
        question=unseen[0].question,
        reference_answer=unseen[0].reference_answer,
        texts=["   "],
        min_score=1.0,
        max_score=4.0,
        n_levels=4,
    )[0]

    assert prediction.score == 1.0


def test_checkpoint_round_trip_gives_identical_predictions(grader):
    unseen = make_item("unseen", seed=99)
    responses = [e.response for e in unseen]
    question, reference = unseen[0].question, unseen[0].reference_answer

    loaded = TrainedReferenceGrader.from_bytes(grader.to_bytes())

    before = grader.scorer(
        grader.scorer.featurise(question=question, reference_answer=reference, responses=responses)
    )
    after = loaded.scorer(
        loaded.scorer.featurise(question=question, reference_answer=reference, responses=responses)
    )
    assert torch.allclose(before.raw, after.raw)
    assert grade_item(loaded, unseen) == grade_item(grader, unseen)
    assert loaded.metrics == grader.metrics


def test_build_by_name():
    model = build_model("reference-scorer", {"hidden_sizes": [8], "n_buckets": 2**10})

    assert isinstance(model, ReferenceScorer)
    assert "reference-scorer" in model_names(task="grader")
    assert model(torch.zeros(3, len(PAIR_FEATURES))).raw.shape == (3,)


def test_loss_falls_when_overfitting_a_tiny_batch():
    torch.manual_seed(0)
    model = build_model(
        "reference-scorer", {"hidden_sizes": [8], "dropout": 0.0, "n_buckets": 2**10}
    )
    features = torch.rand(16, len(PAIR_FEATURES))
    features[:, PAIR_FEATURES.index("empty")] = 0.0
    target = (features[:, 0] > 0.5).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    first = model(features, target).loss.item()

    for _ in range(40):
        loss = model(features, target).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    assert model(features, target).loss.item() < 0.5 * first


def test_decoding_spreads_predictions_that_crowd_the_middle_level():
    gold = np.array([0, 0, 1, 1, 2, 2])
    crowded = HeldOutItem(
        logits=torch.tensor([-0.6, -0.5, -0.05, 0.05, 0.5, 0.6]),
        empty=torch.zeros(6, dtype=torch.bool),
        gold=gold,
        n_levels=3,
    )

    stretch, shift = fit_decoding([crowded])

    assert crowded.qwk((1.0, 0.0)) == 0.0
    assert stretch > 1.0
    assert crowded.qwk((stretch, shift)) == 1.0


def test_training_is_deterministic_given_the_seed(grader):
    again = train_reference_grader(training_examples(), config=SMALL)

    for key, value in grader.scorer.state_dict().items():
        assert torch.equal(value, again.scorer.state_dict()[key]), key
    assert again.metrics == grader.metrics


def test_a_grader_trained_with_an_encoder_refuses_to_grade_without_it():
    examples = [e for i in range(3) for e in make_item(f"item-{i}", seed=i, per_level=3)]
    config = ReferenceConfig(hidden_sizes=(8,), epochs=5, n_buckets=2**12)
    trained = train_reference_grader(examples, encoder=HashEncoder(), config=config)
    unseen = make_item("unseen", seed=99, per_level=1)

    with_encoder = grade_item(trained, unseen, encoder=HashEncoder(), explain=False)

    assert trained.encoder_name == "hash-encoder"
    assert trained.scorer.feature_names == feature_names(use_encoder=True)
    assert len(with_encoder) == 3
    with pytest.raises(GraderUnavailable):
        grade_item(trained, unseen)
    with pytest.raises(GraderUnavailable):
        grade_item(trained, unseen, encoder=HashEncoder(name="another"))


def test_refuses_a_single_item():
    examples = make_item("only", seed=0, per_level=8)

    with pytest.raises(ValueError, match="at least 2 items"):
        train_reference_grader(examples, config=SMALL)


def test_refuses_fewer_than_twenty_examples():
    examples = make_item("a", seed=0, per_level=3) + make_item("b", seed=1, per_level=3)

    with pytest.raises(ValueError, match="at least 20 scored responses, got 18"):
        train_reference_grader(examples, config=SMALL)


def test_refuses_an_item_without_a_reference_answer():
    examples = training_examples()
    examples[-1] = ReferenceExample(**{**examples[-1].__dict__, "reference_answer": "  "})

    with pytest.raises(ValueError, match="item 'item-5' has an empty reference answer"):
        train_reference_grader(examples, config=SMALL)


# ----- exemplars: the item's own teacher-scored answers ---------------------------------------


def make_opaque_item(key: str, seed: int, per_level: int = 8) -> list[ReferenceExample]:
    """An item whose model answer and lengths say nothing of the scores (0-2): each level's
    answers draw on words of their own, so only the item's other scored answers tell."""
    rng = np.random.default_rng(seed)
    pools = [pseudo_words(rng, 5) for _ in range(3)]
    reference = " ".join(pseudo_words(rng, 8))
    examples = []
    for level, pool in enumerate(pools):
        for _ in range(per_level):
            words = list(rng.choice(pool, 4, replace=True)) + list(rng.choice(FILLER, 3))
            rng.shuffle(words)
            examples.append(
                ReferenceExample(
                    item_key=key,
                    question="what do you think",
                    reference_answer=reference,
                    response=" ".join(words),
                    score=float(level),
                    min_score=0.0,
                    max_score=2.0,
                    n_levels=3,
                )
            )
    return examples


@pytest.fixture(scope="module")
def reading_grader() -> TrainedReferenceGrader:
    """Learnt on items whose model answer tells the scores apart and on items where only the
    item's other scored answers do."""
    examples = [e for i in range(3) for e in make_item(f"item-{i}", seed=i, per_level=8)]
    examples += [e for i in range(3, 7) for e in make_opaque_item(f"item-{i}", seed=i)]
    return train_reference_grader(examples, config=dataclasses.replace(SMALL, use_exemplars=True))


def exemplars_of(examples: list[ReferenceExample]) -> list[Exemplar]:
    return [
        Exemplar(key=f"scored-{i}", text=e.response, score=e.score) for i, e in enumerate(examples)
    ]


def test_an_items_scored_answers_carry_it_where_its_model_answer_says_nothing(reading_grader):
    item = make_opaque_item("unseen", seed=99)
    scored, rest = item[::2], item[1::2]
    gold = np.array([e.score for e in rest]).astype(int)
    inverted = [dataclasses.replace(e, score=2.0 - e.score) for e in exemplars_of(scored)]

    def scores(exemplars: list[Exemplar]) -> np.ndarray:
        predictions = grade_item(reading_grader, rest, explain=False, exemplars=exemplars)
        return np.array([p.score for p in predictions]).astype(int)

    blind, told, misled = scores([]), scores(exemplars_of(scored)), scores(inverted)

    assert quadratic_weighted_kappa(gold, told, 3) > quadratic_weighted_kappa(gold, blind, 3) + 0.3
    # Scored the other way round, the like answers pull the scores the other way.
    assert told[gold == 2].mean() > misled[gold == 2].mean()
    assert told[gold == 0].mean() < misled[gold == 0].mean()


def test_the_explanation_names_the_most_similar_scored_answers(reading_grader):
    item = make_item("unseen", seed=99)
    scored = exemplars_of(item[1:])

    (prediction,) = grade_item(reading_grader, item[:1], exemplars=scored)

    keys = [s["key"] for s in prediction.similar]
    similarities = [s["similarity"] for s in prediction.similar]
    assert len(keys) == 3 and set(keys) <= {e.key for e in scored}
    assert similarities == sorted(similarities, reverse=True)
    nearest = next(e for e in scored if e.key == keys[0])
    assert prediction.similar[0]["score"] == nearest.score


def test_an_answer_identical_to_a_scored_one_finds_it_first(reading_grader):
    item = make_item("unseen", seed=99)
    scored = exemplars_of(item)

    (prediction,) = grade_item(reading_grader, item[5:6], exemplars=scored)

    assert prediction.similar[0]["key"] == "scored-5"
    assert prediction.similar[0]["similarity"] == pytest.approx(1.0, abs=1e-3)


def test_an_exemplar_score_outside_the_scale_is_refused(reading_grader):
    item = make_item("unseen", seed=99)
    bad = [Exemplar(key="r9", text="some answer", score=3.0)]

    with pytest.raises(ValueError, match=r"exemplar 'r9': score 3.0 is outside 0.0..2.0"):
        grade_item(reading_grader, item, exemplars=bad)


def test_without_exemplars_the_exemplar_features_are_zero():
    config = ReferenceConfig(use_exemplars=True, exemplar_half_weight=10.0)
    similarity = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1]])
    scores = torch.tensor([1.0, 0.0, 0.5])

    none = exemplar_features(similarity, scores, torch.zeros(2, 3, dtype=torch.bool), config)
    some = exemplar_features(similarity, scores, torch.ones(2, 3, dtype=torch.bool), config)

    assert torch.equal(none, torch.zeros(2, len(EXEMPLAR_FEATURES)))
    weight = 3 / 13
    assert some[:, EXEMPLAR_FEATURES.index("exemplar_weight")].tolist() == pytest.approx(
        [weight, weight]
    )
    assert some[:, EXEMPLAR_FEATURES.index("exemplar_similarity")].tolist() == pytest.approx(
        [0.9, 0.3]
    )
    # Row 0 leans to the 1.0 answer it is most like: above the middle of the scale.
    assert some[0, EXEMPLAR_FEATURES.index("exemplar_score")] > 0


def test_a_grader_that_reads_exemplars_keeps_them_in_its_checkpoint(reading_grader):
    item = make_item("unseen", seed=99)
    scored = exemplars_of(item[::3])
    loaded = TrainedReferenceGrader.from_bytes(reading_grader.to_bytes())

    assert loaded.scorer.config.use_exemplars
    assert loaded.scorer.feature_names == feature_names(False, use_exemplars=True)
    before = grade_item(reading_grader, item, exemplars=scored)
    after = grade_item(loaded, item, exemplars=scored)
    assert [p.score for p in before] == [p.score for p in after]
    assert "validated_qwk_with_exemplars" in reading_grader.metrics


def test_a_grader_trained_without_exemplars_ignores_them(grader):
    item = make_item("unseen", seed=99)

    plain = grade_item(grader, item, explain=False)
    offered = grade_item(grader, item, explain=False, exemplars=exemplars_of(item))

    assert [p.score for p in plain] == [p.score for p in offered]
    assert all(p.similar == [] for p in offered)
