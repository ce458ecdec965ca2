"""Rostering a course from a OneRoster 1.2 CSV export (users.csv, enrollments.csv)."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model

from edu_dl.models import AuditEvent, Course, Enrollment
from edu_dl.services.errors import PermissionDenied, ValidationFailed
from edu_dl.services.importing import ImportFailed
from edu_dl.services.roster import RosterImportResult, RosterInvalid, roster_import
from tests.factories import CourseFactory, EnrollmentFactory, UserFactory

pytestmark = pytest.mark.django_db

# A school's export in the OneRoster 1.2 CSV shape: every column of the binding (roles live in
# roles.csv in 1.2, so users.csv has no role column), two classes, a parent who is in no class.
USERS_HEADER = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,username,userIds,givenName,"
    "familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password,"
    "userMasterIdentifier,resourceSourcedIds,preferredFirstName,preferredMiddleName,"
    "preferredLastName,primaryOrg,pronouns\n"
)
USERS = USERS_HEADER + (
    "t-100,,,true,school-1,mcurie,{LDAP:mcurie},Marie,Curie,,T100,mcurie@school.example,,,,,,"
    ",,,,,school-1,she/her\n"
    "s-201,,,true,school-1,alice,{LDAP:alice},Alice,Liddell,P.,S201,alice@school.example,,,"
    "p-300,09,,,,Ally,,,school-1,\n"
    's-202,,,true,school-1,bob,,Bob,"Marley, Jr",,S202,bob@school.example,,,,09,,,,,,,,\n'
    "a-203,,,true,school-1,carol,,Carol,Danvers,,A203,,,,,,,,,,,,,\n"
    "s-204,,,false,school-1,dave,,Dave,Grohl,,S204,dave@school.example,,,,10,,,,,,,,\n"
    "p-300,,,true,school-1,pparent,,Pat,Liddell,,,pat@home.example,,,s-201,,,,,,,,,\n"
)
ENROLLMENTS_HEADER = (
    "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,"
    "primary,beginDate,endDate\n"
)
ENROLLMENTS = ENROLLMENTS_HEADER + (
    "e-1,,,physics-a,school-1,t-100,teacher,true,2026-09-01,2027-06-30\n"
    "e-2,,,physics-a,school-1,s-201,student,false,2026-09-01,2027-06-30\n"
    "e-3,,,physics-a,school-1,s-202,student,false,2026-09-01,2027-06-30\n"
    "e-4,,,physics-a,school-1,a-203,aide,false,2026-09-01,2027-06-30\n"
    "e-5,,,physics-b,school-1,s-204,student,false,2026-09-01,2027-06-30\n"
    "e-6,,,physics-b,school-1,t-100,teacher,true,2026-09-01,2027-06-30\n"
)


@pytest.fixture
def course() -> Course:
    return CourseFactory(slug="physics-a")


@pytest.fixture
def teacher(course):
    return EnrollmentFactory(course=course, role=Enrollment.Role.TEACHER).user


def roster(course: Course) -> dict[str, tuple[str, str]]:
    """username -> (role, external id) of everyone in the course."""
    return {
        username: (role, external_id)
        for username, role, external_id in Enrollment.objects.filter(course=course).values_list(
            "user__username", "role", "external_id"
        )
    }


def state() -> tuple:
    """Everything an import may write, to compare before and after a refusal."""
    User = get_user_model()
    return (
        sorted(User.objects.values_list("username", "first_name", "email", "is_active")),
        sorted(Enrollment.objects.values_list("user_id", "course_id", "role", "external_id")),
        AuditEvent.objects.count(),
    )


def test_a_oneroster_export_enrols_the_class_of_the_course_with_its_roles(course, teacher):
    result = roster_import(course=course, users=USERS, enrollments=ENROLLMENTS, actor=teacher)

    assert result == RosterImportResult(
        class_sourced_id="physics-a",
        users_created=4,
        users_matched=0,
        enrollments_created=4,
        enrollments_updated=0,
        unchanged=0,
        skipped=0,
    )
    assert roster(course) == {
        teacher.username: ("teacher", ""),
        "mcurie": ("teacher", "t-100"),
        "alice": ("student", "s-201"),
        "bob": ("student", "s-202"),
        "carol": ("assistant", "a-203"),
    }
    bob = get_user_model().objects.get(username="bob")
    assert (bob.first_name, bob.last_name, bob.email) == ("Bob", "Marley, Jr", "bob@school.example")
    assert bob.is_active and not bob.has_usable_password()
    # Only the people of the course's class get accounts: not dave (physics-b), not the parent.
    assert not get_user_model().objects.filter(username__in=["dave", "pparent"]).exists()
    event = AuditEvent.objects.get(action="roster.import")
    assert (event.actor, event.course, event.target_id) == (teacher, course, str(course.pk))
    assert event.after == {
        "class_sourced_id": "physics-a",
        "users_created": 4,
        "users_matched": 0,
        "enrollments_created": 4,
        "enrollments_updated": 0,
        "unchanged": 0,
        "skipped": 0,
    }


def test_importing_the_same_files_again_changes_nothing(course, teacher):
    roster_import(course=course, users=USERS, enrollments=ENROLLMENTS, actor=teacher)
    before = roster(course)
    users_before = state()[0]

    again = roster_import(course=course, users=USERS, enrollments=ENROLLMENTS, actor=teacher)

    assert (again.users_created, again.users_matched) == (0, 4)
    assert (again.enrollments_created, again.enrollments_updated, again.unchanged) == (0, 0, 4)
    assert roster(course) == before
    assert state()[0] == users_before


def test_files_are_read_from_text_bytes_or_open_files_with_a_byte_order_mark(course, teacher):
    users = io.BytesIO(("\ufeff" + USERS).encode("utf-8"))
    enrollments = io.StringIO(ENROLLMENTS.replace("\n", "\r\n"))

    result = roster_import(course=course, users=users, enrollments=enrollments, actor=teacher)

    assert result.enrollments_created == 4


def test_an_existing_account_is_matched_by_username_and_never_changed_and_its_role_updated(
    course, teacher
):
    alice = UserFactory(username="alice", first_name="Alicia", email="a@old.example")
    EnrollmentFactory(user=alice, course=course, role=Enrollment.Role.ASSISTANT)
    bob = UserFactory(username="bob")
    EnrollmentFactory(user=bob, course=course, role=Enrollment.Role.STUDENT, external_id="sis-9")

    result = roster_import(course=course, users=USERS, enrollments=ENROLLMENTS, actor=teacher)

    assert (result.users_created, result.users_matched) == (2, 2)
    assert (result.enrollments_created, result.enrollments_updated, result.unchanged) == (2, 1, 1)
    # alice: role from the file, external id filled; bob: the id something else set is kept.
    assert roster(course)["alice"] == ("student", "s-201")
    assert roster(course)["bob"] == ("student", "sis-9")
    alice.refresh_from_db()
    assert (alice.first_name, alice.email) == ("Alicia", "a@old.example")
    assert alice.has_usable_password()


def test_a_disabled_user_is_created_inactive(course, teacher):
    enrollments = ENROLLMENTS_HEADER + "e-5,,,physics-b,school-1,s-204,student,,,\n"

    result = roster_import(course=course, users=USERS, enrollments=enrollments, actor=teacher)

    assert result.class_sourced_id == "physics-b"  # the file's only class
    assert get_user_model().objects.get(username="dave").is_active is False
    assert roster(course)["dave"] == ("student", "s-204")


def test_a_oneroster_1_1_users_file_with_a_role_column_is_read_the_same(course, teacher):
    users = (
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
        "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,"
        "password\n"
        "s-201,active,2026-08-01T10:00:00Z,TRUE,school-1,student,alice,,Alice,Liddell,,,"
        "alice@school.example,,,,09,\n"
    )
    enrollments = (
        ENROLLMENTS_HEADER + "e-2,active,2026-08-01T10:00:00Z,physics-a,school-1,s-201,Student,,,\n"
    )

    result = roster_import(course=course, users=users, enrollments=enrollments, actor=teacher)

    assert result.enrollments_created == 1
    assert roster(course)["alice"] == ("student", "s-201")


def test_tobedeleted_enrolments_are_skipped_and_nobody_is_unenrolled(course, teacher):
    roster_import(course=course, users=USERS, enrollments=ENROLLMENTS, actor=teacher)
    delta = ENROLLMENTS.replace(
        ",,,physics-a,school-1,s-202", ",tobedeleted,,physics-a,school-1,s-202"
    )
    users = USERS.replace("a-203,,", "a-203,toBeDeleted,")

    result = roster_import(course=course, users=users, enrollments=delta, actor=teacher)

    assert (result.skipped, result.unchanged) == (2, 2)
    assert roster(course)["bob"] == ("student", "s-202")
    assert roster(course)["carol"] == ("assistant", "a-203")


def test_every_bad_row_of_both_files_is_reported_and_nothing_changes(course, teacher):
    users = USERS_HEADER + (
        "t-100,,,true,,mcurie,,Marie,Curie,,,mcurie@school.example,,,,,,,,,,,,\n"
        "s-201,active,,yes,,alice,,Alice,Liddell,,,alice@,,,,,,,,,,,,\n"
        "s-201,,,true,,bob,,Bob,Marley,,,,,,,,,,,,,,,\n"
        ",gone,,true,,,,Carol,Danvers,,,,,,,,,,,,,,,\n"
        "s-205,,,true,,erin smith,,Erin,Smith,,,,,,,,,,,,,,,\n"
        "s-206,,,true,,too,few\n"
    )
    enrollments = ENROLLMENTS_HEADER + (
        "e-1,,,physics-a,school-1,t-100,teacher,true,,\n"
        "e-1,,,physics-a,school-1,s-201,learner,,,\n"
        "e-3,,,physics-a,school-1,s-999,student,,,\n"
        "e-4,,,physics-a,school-1,t-100,parent,,,\n"
    )
    before = state()

    with pytest.raises(RosterInvalid) as refused:
        roster_import(course=course, users=users, enrollments=enrollments, actor=teacher)

    assert [str(problem) for problem in refused.value.problems] == [
        "users.csv line 3: enabledUser: 'yes' is not one of true, false",
        "users.csv line 3: email: 'alice@' is not a valid email address",
        "users.csv line 4: sourcedId: 's-201' is already on line 3",
        "users.csv line 5: sourcedId: must not be empty",
        "users.csv line 5: status: 'gone' is not one of active, tobedeleted (or blank)",
        "users.csv line 5: username: must not be empty",
        "users.csv line 6: username: 'erin smith': Enter a valid username. This value may "
        "contain only letters, numbers, and @/./+/-/_ characters.",
        "users.csv line 7: 7 values, but the header names 24 columns",
        "enrollments.csv line 3: sourcedId: 'e-1' is already on line 2",
        "enrollments.csv line 3: role: 'learner' is not a OneRoster role",
        "enrollments.csv line 4: userSourcedId: 's-999' is not in users.csv",
        "enrollments.csv line 5: role: 'parent' cannot take part in a course; only student, "
        "teacher, aide and proctor enrolments can be imported",
    ]
    assert isinstance(refused.value, ImportFailed)
    assert refused.value.extra["problem_count"] == 12
    assert refused.value.extra["errors"]["enrollments"][0].startswith("enrollments.csv line 3:")
    assert state() == before


def test_missing_columns_and_a_file_that_is_not_utf8_are_reported(course, teacher):
    users = b"sourcedId,status,username\ns-1,,\xe9lise\n"
    enrollments = "sourcedId,classSourcedId,userSourcedId\ne-1,physics-a,s-1\n"
    before = state()

    with pytest.raises(RosterInvalid) as refused:
        roster_import(course=course, users=users, enrollments=enrollments, actor=teacher)

    assert [str(problem) for problem in refused.value.problems] == [
        "users.csv line 2: the file is not UTF-8 text",
        "enrollments.csv line 1: status: the column is missing",
        "enrollments.csv line 1: role: the column is missing",
    ]
    assert state() == before


def test_an_empty_file_is_refused(course, teacher):
    with pytest.raises(RosterInvalid) as refused:
        roster_import(course=course, users="\n\n", enrollments=ENROLLMENTS, actor=teacher)

    assert [str(problem) for problem in refused.value.problems] == [
        "users.csv line 1: the file is empty; a header line is needed"
    ]


def test_a_parent_in_another_class_is_no_reason_to_refuse(course, teacher):
    enrollments = ENROLLMENTS + "e-7,,,physics-b,school-1,p-300,parent,,,\n"

    result = roster_import(course=course, users=USERS, enrollments=enrollments, actor=teacher)

    assert result.enrollments_created == 4


def test_a_person_enrolled_twice_in_the_class_is_refused(course, teacher):
    enrollments = ENROLLMENTS + "e-7,,,physics-a,school-1,s-201,aide,,,\n"

    with pytest.raises(RosterInvalid) as refused:
        roster_import(course=course, users=USERS, enrollments=enrollments, actor=teacher)

    assert [str(problem) for problem in refused.value.problems] == [
        "enrollments.csv line 8: userSourcedId: 's-201' is enrolled in class 'physics-a' on "
        "line 3 already; a person holds one role in a course"
    ]


def test_several_classes_none_named_like_the_course_are_refused_naming_them(teacher):
    other = CourseFactory(slug="chemistry")
    EnrollmentFactory(user=teacher, course=other, role=Enrollment.Role.TEACHER)
    before = state()

    with pytest.raises(ValidationFailed) as refused:
        roster_import(course=other, users=USERS, enrollments=ENROLLMENTS, actor=teacher)

    assert refused.value.message.startswith(
        "enrollments.csv holds the classes 'physics-a', 'physics-b', and none of them is this "
        "course ('chemistry')"
    )
    assert refused.value.extra == {"classes": ["physics-a", "physics-b"]}
    assert state() == before


def test_a_sourced_id_that_is_someone_elses_external_id_is_refused(course, teacher):
    jsmith = UserFactory(username="jsmith")
    EnrollmentFactory(user=jsmith, course=course, external_id="s-201")
    before = state()

    with pytest.raises(RosterInvalid) as refused:
        roster_import(course=course, users=USERS, enrollments=ENROLLMENTS, actor=teacher)

    assert [str(problem) for problem in refused.value.problems] == [
        "users.csv line 3: sourcedId: 's-201' is the external id of 'jsmith' in this course, "
        "not of 'alice'"
    ]
    assert state() == before


@pytest.mark.parametrize("who", ["student", "other_teacher", "stranger"])
def test_only_the_course_staff_may_import_its_roster(course, who):
    if who == "student":
        actor = EnrollmentFactory(course=course).user
    elif who == "other_teacher":
        actor = EnrollmentFactory(role=Enrollment.Role.TEACHER).user
    else:
        actor = UserFactory()
    before = state()

    with pytest.raises(PermissionDenied):
        roster_import(course=course, users=USERS, enrollments=ENROLLMENTS, actor=actor)

    assert state() == before


def test_a_superuser_who_is_not_enrolled_may_import(course):
    admin = UserFactory(is_superuser=True)

    result = roster_import(course=course, users=USERS, enrollments=ENROLLMENTS, actor=admin)

    assert result.enrollments_created == 4


def test_a_required_column_named_twice_and_a_nul_character_are_reported(course, teacher):
    users = (
        "sourcedId,status,enabledUser,username,givenName,familyName,email,phone,phone\n"
        "s-1,,true,alice,Al\x00ice,Liddell,,1,2\n"
    )
    enrollments = (
        "sourcedId,status,classSourcedId,userSourcedId,role,role\ne-1,,physics-a,s-1,student,aide\n"
    )

    with pytest.raises(RosterInvalid) as refused:
        roster_import(course=course, users=users, enrollments=enrollments, actor=teacher)

    assert [str(problem) for problem in refused.value.problems] == [
        "users.csv line 2: givenName: holds a NUL character",
        "enrollments.csv line 1: role: the column is named twice",
    ]
