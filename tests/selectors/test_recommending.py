"""A course's resource feedback as labelled examples for the recommender."""

from __future__ import annotations

import pytest

from edu_dl.models import Resource
from edu_dl.selectors.recommending import (
    labelled_feedback_count,
    resource_feedback_examples,
    resource_feedback_fingerprint,
)
from tests.factories import CourseFactory, ResourceFactory, SkillFactory
from tests.recommender_data import at, estimate, event, make_feedback_course, student_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def course():
    return CourseFactory()


@pytest.fixture
def fractions(course):
    return SkillFactory(course=course, name="Fractions")


@pytest.fixture
def graphs(course):
    return SkillFactory(course=course, name="Graphs")


def test_votes_are_labels_at_full_weight_and_a_viewing_is_none(course, fractions):
    reading = ResourceFactory(course=course, skills=[fractions])
    ann, bob = student_in(course), student_in(course)
    estimate(ann, fractions, 0.3, at(0))
    helpful = event(ann, reading, "helpful", at(1))
    event(bob, reading, "viewed", at(2))
    not_helpful = event(bob, reading, "not_helpful", at(3))

    examples = resource_feedback_examples(course_id=course.pk)

    assert [(e.event_id, e.student_id, e.resource_id) for e in examples] == [
        (helpful.pk, ann.pk, reading.pk),
        (not_helpful.pk, bob.pk, reading.pk),
    ]
    assert [(e.label, e.weight) for e in examples] == [(1.0, 1.0), (0.0, 1.0)]
    assert [e.skills for e in examples] == [{fractions.pk: 1.0}, {fractions.pk: 1.0}]
    # Bob has no estimate yet: his mastery of the skill is unknown, not zero.
    assert [e.mastery for e in examples] == [{fractions.pk: 0.3}, {}]


def test_a_students_repeated_votes_on_a_resource_count_once_with_the_last(course, fractions):
    reading = ResourceFactory(course=course, skills=[fractions])
    video = ResourceFactory(course=course, skills=[fractions])
    ann = student_in(course)
    event(ann, reading, "helpful", at(1))
    event(ann, reading, "helpful", at(2))
    last = event(ann, reading, "not_helpful", at(3))
    other = event(ann, video, "helpful", at(4))

    examples = resource_feedback_examples(course_id=course.pk)

    assert [(e.event_id, e.label) for e in examples] == [(last.pk, 0.0), (other.pk, 1.0)]


def test_a_completion_is_labelled_by_the_mastery_change_that_followed(course, fractions):
    reading = ResourceFactory(course=course, skills=[fractions])
    gained, flat, dropped, never_measured, no_start = (student_in(course) for _ in range(5))
    for student, before, after in [
        (gained, 0.40, 0.50),
        (flat, 0.40, 0.41),
        (dropped, 0.40, 0.30),
    ]:
        estimate(student, fractions, 0.10, at(0))  # an older estimate: not the one before
        estimate(student, fractions, before, at(1))
        event(student, reading, "completed", at(2))
        estimate(student, fractions, after, at(3))
        estimate(student, fractions, 0.99, at(4))  # a later one: not the first after
    estimate(never_measured, fractions, 0.40, at(1))
    event(never_measured, reading, "completed", at(2))
    event(no_start, reading, "completed", at(2))
    estimate(no_start, fractions, 0.40, at(3))

    examples = resource_feedback_examples(course_id=course.pk)

    by_student = {e.student_id: e for e in examples}
    assert set(by_student) == {gained.pk, flat.pk, dropped.pk}
    assert [(by_student[s.pk].label, by_student[s.pk].weight) for s in (gained, flat, dropped)] == [
        (1.0, 0.5),
        (0.0, 0.5),
        (0.0, 0.5),
    ]
    assert {e.event for e in examples} == {"completed"}
    assert by_student[gained.pk].mastery == {fractions.pk: 0.40}


def test_the_change_is_weighted_by_how_much_the_resource_teaches_each_skill(
    course, fractions, graphs
):
    mostly_fractions = ResourceFactory(course=course, skills={fractions: 3.0, graphs: 1.0})
    ann = student_in(course)
    estimate(ann, fractions, 0.40, at(0))
    estimate(ann, graphs, 0.60, at(0))
    event(ann, mostly_fractions, "completed", at(1))
    # +0.05 on fractions (weight 3), -0.05 on graphs (weight 1): a mean gain of 0.025.
    estimate(ann, fractions, 0.45, at(2))
    estimate(ann, graphs, 0.55, at(2))

    [example] = resource_feedback_examples(course_id=course.pk)

    assert (example.label, example.weight) == (1.0, 0.5)
    assert example.skills == {fractions.pk: 3.0, graphs.pk: 1.0}
    assert example.mastery == {fractions.pk: 0.40, graphs.pk: 0.60}


def test_an_estimate_at_the_moment_of_the_event_counts_as_before_it(course, fractions):
    reading = ResourceFactory(course=course, skills=[fractions])
    ann = student_in(course)
    estimate(ann, fractions, 0.40, at(1))
    event(ann, reading, "completed", at(1))
    estimate(ann, fractions, 0.50, at(2))

    [example] = resource_feedback_examples(course_id=course.pk)

    assert (example.mastery, example.label) == ({fractions.pk: 0.40}, 1.0)


def test_another_courses_feedback_is_left_out(course, fractions):
    reading = ResourceFactory(course=course, skills=[fractions])
    other_course = CourseFactory()
    elsewhere = ResourceFactory(course=other_course, skills=[SkillFactory(course=other_course)])
    ann = student_in(course)
    mine = event(ann, reading, "helpful", at(1))
    event(ann, elsewhere, "helpful", at(2))

    examples = resource_feedback_examples(course_id=course.pk)

    assert [e.event_id for e in examples] == [mine.pk]


def test_three_queries_whatever_the_number_of_events(django_assert_num_queries):
    small = make_feedback_course(students=2, slug="small")
    large = make_feedback_course(students=12, slug="large", seed=1)

    with django_assert_num_queries(3):
        few = resource_feedback_examples(course_id=small.pk)
    with django_assert_num_queries(3):
        many = resource_feedback_examples(course_id=large.pk)

    assert (len(few), len(many)) == (8, 48)


def test_the_generated_course_has_four_labelled_examples_per_student():
    course = make_feedback_course(students=5)

    examples = resource_feedback_examples(course_id=course.pk)

    assert len(examples) == 20
    assert sorted({(e.event, e.weight) for e in examples}) == [
        ("completed", 0.5),
        ("helpful", 1.0),
        ("not_helpful", 1.0),
    ]
    # A student low on fractions finds A helpful and gains from both completions of C; the
    # others find A unhelpful and gain nothing.
    a = Resource.objects.get(course=course, title="A")
    for student_id in {e.student_id for e in examples}:
        mine = [e for e in examples if e.student_id == student_id]
        [on_a] = [e.label for e in mine if e.resource_id == a.pk]
        assert [e.label for e in mine if e.event == "completed"] == [on_a, on_a]


def test_the_count_stops_at_enough_votes_and_is_exact_below(course, fractions):
    reading = ResourceFactory(course=course, skills=[fractions])
    students = [student_in(course) for _ in range(3)]
    for number, student in enumerate(students):
        estimate(student, fractions, 0.4, at(0))
        event(student, reading, "helpful", at(1))
        event(student, reading, "helpful", at(2))  # the same vote again: counts once
        event(student, reading, "completed", at(3))
        estimate(student, fractions, 0.5 + number / 10, at(4))

    assert labelled_feedback_count(course_id=course.pk) == 6
    assert labelled_feedback_count(course_id=course.pk, enough=3) == 3
    assert labelled_feedback_count(course_id=course.pk, enough=5) == 6
    assert labelled_feedback_count(course_id=course.pk, enough=10) == 6


def test_the_fingerprint_changes_with_the_data(course, fractions):
    reading = ResourceFactory(course=course, skills=[fractions])
    ann = student_in(course)
    vote = event(ann, reading, "helpful", at(1))
    first = resource_feedback_fingerprint(resource_feedback_examples(course_id=course.pk))
    again = resource_feedback_fingerprint(resource_feedback_examples(course_id=course.pk))

    vote.event = "not_helpful"
    vote.save()
    changed = resource_feedback_fingerprint(resource_feedback_examples(course_id=course.pk))

    assert first == again
    assert len(first) == 64
    assert changed != first
