"""The practice and resource policy: readiness, the target band, variety, pins and hides."""

from __future__ import annotations

import pytest

from edu_dl.ml.recommend.policy import (
    BLOCKED,
    MASTERED,
    READY,
    PolicyConfig,
    PracticeCandidate,
    ResourceCandidate,
    SkillState,
    band_fit,
    choose_practice,
    rank_practice,
    rank_resources,
    ready_skill_ranking,
    skill_readiness,
)


def graph_states(**mastery):
    """division -> fractions -> ratios (each the prerequisite of the next); all with evidence."""
    prerequisites = {"division": (), "fractions": ("division",), "ratios": ("fractions",)}
    return {
        name: SkillState(mastery=value, evidence=5, prerequisites=prerequisites[name])
        for name, value in mastery.items()
    }


def test_readiness_follows_mastery_and_prerequisites():
    states = graph_states(division=0.9, fractions=0.4, ratios=0.3)

    readiness = skill_readiness(states)

    assert readiness["division"].status == MASTERED
    assert readiness["fractions"].status == READY
    assert readiness["fractions"].mastered_prerequisites == ("division",)
    assert readiness["ratios"].status == BLOCKED
    assert readiness["ratios"].missing_prerequisites == ("fractions",)


def test_a_new_student_starts_with_the_skills_without_prerequisites():
    states = {
        "division": SkillState(mastery=0.5, evidence=0),
        "fractions": SkillState(mastery=0.5, evidence=0, prerequisites=("division",)),
    }

    readiness = skill_readiness(states)

    assert readiness["division"].status == READY
    assert readiness["division"].starting is True
    assert readiness["fractions"].status == BLOCKED


def test_prerequisites_of_unknown_skills_are_ignored():
    states = {"fractions": SkillState(mastery=0.3, evidence=2, prerequisites=("elsewhere",))}

    assert skill_readiness(states)["fractions"].status == READY


def test_the_skill_in_progress_ranks_first_then_the_most_left_to_learn():
    states = {
        "a": SkillState(mastery=0.4, evidence=3),
        "b": SkillState(mastery=0.7, evidence=3),
        "c": SkillState(mastery=0.5, evidence=3),
    }
    readiness = skill_readiness(states)

    assert ready_skill_ranking(readiness) == ["a", "c", "b"]
    assert ready_skill_ranking(readiness, recent_skills=["c", "c"]) == ["c", "a", "b"]


def test_a_long_streak_on_one_skill_yields_to_another():
    states = {"a": SkillState(mastery=0.6, evidence=3), "b": SkillState(mastery=0.5, evidence=3)}
    readiness = skill_readiness(states)
    config = PolicyConfig(streak_limit=3)

    assert ready_skill_ranking(readiness, recent_skills=["a"] * 2, config=config)[0] == "a"
    assert ready_skill_ranking(readiness, recent_skills=["a"] * 3, config=config)[0] == "b"


def test_band_fit_is_one_inside_the_band_and_falls_outside():
    fit = band_fit(__import__("numpy").array([0.1, 0.6, 0.7, 0.85, 0.95]), PolicyConfig())

    assert fit.tolist() == pytest.approx([0.0, 1.0, 1.0, 1.0, 1 - 0.1 / 0.35])


def test_practice_prefers_items_in_the_band_on_ready_skills():
    states = graph_states(division=0.9, fractions=0.5, ratios=0.3)
    items = [
        PracticeCandidate("too-hard", ("fractions",), 0.2),
        PracticeCandidate("in-band", ("fractions",), 0.7),
        PracticeCandidate("mastered-skill", ("division",), 0.7),
        PracticeCandidate("blocked-skill", ("ratios",), 0.7),
    ]

    ranked = rank_practice(states, items)

    assert [s.key for s in ranked] == ["in-band", "too-hard"]
    assert ranked[0].facts["in_band"] is True
    assert ranked[0].facts["prerequisites_mastered"] == ["division"]
    assert ranked[0].skill == "fractions"


def test_practice_keeps_variety_and_skips_excluded_items():
    states = {"a": SkillState(0.5, 3), "b": SkillState(0.4, 3)}
    items = [PracticeCandidate(f"a{i}", ("a",), 0.7) for i in range(5)] + [
        PracticeCandidate("b0", ("b",), 0.7)
    ]

    ranked = rank_practice(states, items, exclude={"a0"}, config=PolicyConfig(per_skill=2))

    assert [s.key for s in ranked] == ["b0", "a1", "a2"]


def test_choose_practice_falls_back_when_nothing_is_ready():
    states = {"a": SkillState(0.95, 3), "b": SkillState(0.9, 3)}
    items = [PracticeCandidate("a0", ("a",), 0.97), PracticeCandidate("b0", ("b",), 0.8)]

    chosen = choose_practice(states, items)

    assert chosen.key == "b0"
    assert chosen.facts["fallback"] is True
    assert choose_practice(states, []) is None


def test_resources_follow_need_helpfulness_and_the_teacher():
    states = graph_states(division=0.9, fractions=0.4, ratios=0.3)
    resources = [
        ResourceCandidate("fractions-video", {"fractions": 1.0}, 0.5, helpfulness=0.9),
        ResourceCandidate("fractions-reading", {"fractions": 1.0}, 0.5, helpfulness=0.2),
        ResourceCandidate("division-review", {"division": 1.0}, 0.3),
        ResourceCandidate("ratios-intro", {"ratios": 1.0}, 0.5),
        ResourceCandidate("fractions-done", {"fractions": 1.0}, 0.5),
        ResourceCandidate("fractions-hidden", {"fractions": 1.0}, 0.5),
    ]

    ranked = rank_resources(
        states,
        resources,
        completed={"fractions-done"},
        hidden={"fractions-hidden"},
        pinned=["ratios-intro"],
    )

    assert [s.key for s in ranked] == ["ratios-intro", "fractions-video", "fractions-reading"]
    assert ranked[0].facts["pinned"] is True
    assert ranked[1].facts["helpfulness"] == 0.9
    assert [s.rank for s in ranked] == [1, 2, 3]


def test_a_new_resource_without_feedback_is_placed_by_its_skills():
    states = {"a": SkillState(0.3, 3), "b": SkillState(0.95, 3)}
    resources = [
        ResourceCandidate("new-on-a", {"a": 1.0}),
        ResourceCandidate("on-mastered-b", {"b": 1.0}),
    ]

    assert [s.key for s in rank_resources(states, resources)] == ["new-on-a"]


def test_no_skills_or_no_catalogue_gives_an_empty_answer():
    assert rank_practice({}, []) == []
    assert rank_resources({}, []) == []
    assert rank_resources({"a": SkillState(0.3, 1)}, []) == []


def test_config_rejects_a_band_upside_down():
    with pytest.raises(ValueError, match="band"):
        PolicyConfig(band_low=0.9, band_high=0.6)
