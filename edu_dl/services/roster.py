"""Rostering a course from a school's OneRoster 1.2 CSV export: users.csv and enrollments.csv.

What is read
------------
``users.csv`` needs the columns ``sourcedId, status, enabledUser, username, givenName,
familyName, email``; ``enrollments.csv`` needs ``sourcedId, status, classSourcedId,
userSourcedId, role``. Every other OneRoster column (``role`` or ``roles`` of a user,
``schoolSourcedId``, ``primary``, ``beginDate``, ``dateLastModified``, phone numbers, passwords
...) may be there and is ignored: the course role comes from the enrolment, not from the user.
A blank ``status`` (the way bulk files are written) means active; tokens (status, role,
enabledUser) are read without regard to case, so ``toBeDeleted`` and ``TRUE`` are understood.

Which enrolments
----------------
An export usually holds a whole school. Only the enrolments of one class are imported: the class
whose ``classSourcedId`` is the course's slug, else the only class of the file; a file with
several classes and none named like the course is refused, naming the classes it holds. Only the
users that those enrolments name are created or matched; the other rows are checked, not used.

Roles: ``student`` becomes a student, ``teacher`` a teacher, ``aide`` and ``proctor`` teaching
assistants. Any other role in the imported class (parent, guardian, administrator ...) refuses
the import: such a person has no place in a course, and leaving them out silently would hide a
mistake in the export. In the other classes any OneRoster role (or an ``ext:`` one) is accepted.

Who is who
----------
A user is matched by ``username``; a missing one is created with an unusable password (they sign
in however the site's administrators decide, never with a password from a file), names and email
from the file, and ``is_active`` from ``enabledUser``. An existing account is never changed by a
file: not its names, email, or whether it is active. The user's ``sourcedId`` becomes the
enrolment's ``external_id``, the id every other import and integration finds the student by; an
enrolment that already has another external id keeps it (something else already relies on it).
A ``sourcedId`` that is the external id of someone else in the course refuses the import: the
export renamed a person or gave an id to the wrong one, and a second account would split a
student's history in two.

Re-importing changes nothing: an enrolment with the same role is ``unchanged``; one with another
role (or no external id yet) is ``updated``.

Deletions: nothing is ever unenrolled. An enrolment whose ``status`` (or whose user's status) is
``tobedeleted`` is skipped and counted in ``skipped``. Removing someone from a course cuts them
off from their own work; that is left to a teacher's deliberate act, not to a delta file, and an
external id does not prove that a roster import made the enrolment (history imports set them too).

All or nothing
--------------
Every row of both files is checked before anything is written, and every bad row is reported as
``users.csv line 7: email: 'x@' is not a valid email address`` (see :class:`RosterInvalid`).
Everything is written in one transaction, and roster imports into one course run one at a time.
The import is recorded in the audit trail with its counts (no personal data).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import IO

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from edu_dl.models import Course, Enrollment
from edu_dl.selectors.access import course_is_staff
from edu_dl.services.audit import audit_record
from edu_dl.services.courses import enrollment_create
from edu_dl.services.errors import PermissionDenied, ValidationFailed
from edu_dl.services.importing import ImportFailed

CsvSource = str | bytes | IO[str] | IO[bytes]

USERS_FILE = "users.csv"
ENROLLMENTS_FILE = "enrollments.csv"
USER_COLUMNS = (
    "sourcedId",
    "status",
    "enabledUser",
    "username",
    "givenName",
    "familyName",
    "email",
)
ENROLLMENT_COLUMNS = ("sourcedId", "status", "classSourcedId", "userSourcedId", "role")

# OneRoster status tokens (lowercased); a blank status is how bulk files write "active".
ACTIVE, TO_BE_DELETED = "active", "tobedeleted"
STATUSES = {"": ACTIVE, ACTIVE: ACTIVE, TO_BE_DELETED: TO_BE_DELETED}
BOOLEANS = {"true": True, "false": False}
# The OneRoster 1.1 and 1.2 role vocabulary, lowercased; "ext:..." roles are allowed too.
ONEROSTER_ROLES = frozenset(
    {
        "administrator",
        "aide",
        "counselor",
        "districtadministrator",
        "guardian",
        "parent",
        "principal",
        "proctor",
        "relative",
        "siteadministrator",
        "student",
        "systemadministrator",
        "teacher",
    }
)
COURSE_ROLES: Mapping[str, str] = {
    "student": Enrollment.Role.STUDENT,
    "teacher": Enrollment.Role.TEACHER,
    "aide": Enrollment.Role.ASSISTANT,
    "proctor": Enrollment.Role.ASSISTANT,
}
EXTERNAL_ID_MAX_LENGTH = 255  # Enrollment.external_id
# A refusal lists at most this many bad rows (and says how many there were in all).
REPORTED_PROBLEMS = 1000
_QUERY_CHUNK = 500  # values per ``__in`` query (SQLite limits parameters)


@dataclass(frozen=True)
class RosterImportResult:
    """What an import did. ``class_sourced_id`` is the class whose enrolments were imported."""

    class_sourced_id: str
    users_created: int = 0
    users_matched: int = 0
    enrollments_created: int = 0
    enrollments_updated: int = 0
    unchanged: int = 0
    skipped: int = 0


@dataclass(frozen=True)
class RowProblem:
    """One bad value: the file, its line (1 is the header), the column and why."""

    file: str
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}"
        return (
            f"{where}: {self.column}: {self.reason}" if self.column else f"{where}: {self.reason}"
        )


class RosterInvalid(ImportFailed):
    """Rows of the roster files are wrong; nothing was written.

    ``problems`` holds every one. In a problem-details answer they are under ``errors``, by
    request field (``users``, ``enrollments``), each as ``users.csv line N: column: reason``.
    """

    def __init__(self, problems: Sequence[RowProblem]):
        first = problems[0]
        super().__init__(first.line, first.reason, field=_field(first.file))
        self.problems = list(problems)
        shown = "; ".join(str(problem) for problem in self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        count = len(self.problems)
        self.message = (
            f"{count} {'problem' if count == 1 else 'problems'} in the roster files, nothing "
            f"was imported: {shown}{more}"
        )
        self.args = (self.message,)
        errors: dict[str, list[str]] = {}
        for problem in self.problems[:REPORTED_PROBLEMS]:
            errors.setdefault(_field(problem.file), []).append(str(problem))
        # No single field: the problem answer lists every row under "errors" instead.
        self.field = None
        self.extra = {"errors": errors, "problem_count": len(self.problems)}


def _field(file: str) -> str:
    return file.removesuffix(".csv")


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _UserRow:
    line: int
    sourced_id: str
    status: str
    enabled: bool
    username: str
    given_name: str
    family_name: str
    email: str


@dataclass(frozen=True)
class _EnrollmentRow:
    line: int
    sourced_id: str
    status: str
    class_sourced_id: str
    user_sourced_id: str
    role: str  # lowercased OneRoster role


def _text(source: CsvSource, *, file: str, problems: list[RowProblem]) -> str | None:
    """The file's text (a leading byte order mark dropped), or None when it is not UTF-8."""
    data = source if isinstance(source, str | bytes) else source.read()
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            problems.append(RowProblem(file, line, "", "the file is not UTF-8 text"))
            return None
    return data.removeprefix("\ufeff")


class _CsvRows:
    """Iterates (first line, values by column) over the data rows whose shape is right.

    Header problems (no header, a required column missing, a column named twice), text that is
    not UTF-8 and rows with the wrong number of values go to ``problems``. ``usable`` turns
    False when the file could not be read at all (its rows then cannot be checked).
    """

    def __init__(
        self,
        source: CsvSource,
        *,
        file: str,
        required: Sequence[str],
        problems: list[RowProblem],
    ):
        self.source, self.file, self.required, self.problems = source, file, required, problems
        self.usable = True

    def __iter__(self) -> Iterator[tuple[int, dict[str, str]]]:
        text = _text(self.source, file=self.file, problems=self.problems)
        if text is None:
            self.usable = False
            return
        reader = csv.reader(io.StringIO(text, newline=""))
        header: list[str] | None = None
        end = 0  # the last line of the previous record
        try:
            for values in reader:
                start, end = end + 1, reader.line_num
                if not any(value.strip() for value in values):
                    continue  # a blank line
                if header is None:
                    header = [name.strip() for name in values]
                    self.usable = _header_is_valid(
                        header,
                        file=self.file,
                        line=start,
                        required=self.required,
                        problems=self.problems,
                    )
                    if not self.usable:
                        return
                    continue
                width = len(header)
                if len(values) > width and not any(value.strip() for value in values[width:]):
                    values = values[:width]  # trailing empty values (a trailing comma)
                if len(values) != width:
                    self.problems.append(
                        RowProblem(
                            self.file,
                            start,
                            "",
                            f"{len(values)} values, but the header names {width} columns",
                        )
                    )
                    continue
                yield (
                    start,
                    {name: value.strip() for name, value in zip(header, values, strict=True)},
                )
        except csv.Error as error:
            self.problems.append(RowProblem(self.file, end + 1, "", f"unreadable CSV: {error}"))
            return
        if header is None:
            self.usable = False
            self.problems.append(
                RowProblem(self.file, 1, "", "the file is empty; a header line is needed")
            )


def _header_is_valid(
    header: list[str], *, file: str, line: int, required: Sequence[str], problems: list[RowProblem]
) -> bool:
    before = len(problems)
    seen: set[str] = set()
    for name in header:
        if name in required and name in seen:  # which of the two would be meant?
            problems.append(RowProblem(file, line, name, "the column is named twice"))
        seen.add(name)
    for name in required:
        if name not in seen:
            problems.append(RowProblem(file, line, name, "the column is missing"))
    return len(problems) == before


class _Checker:
    """Collects a row's problems; each check returns the value it checked."""

    def __init__(self, file: str, line: int, values: dict[str, str], problems: list[RowProblem]):
        self.file, self.line, self.values, self.problems = file, line, values, problems
        self.bad = False

    def problem(self, column: str, reason: str) -> None:
        self.problems.append(RowProblem(self.file, self.line, column, reason))
        self.bad = True

    def text(self, column: str, *, required: bool = False, max_length: int | None = None) -> str:
        value = self.values[column]
        if "\x00" in value:
            self.problem(column, "holds a NUL character")
        elif required and not value:
            self.problem(column, "must not be empty")
        elif max_length is not None and len(value) > max_length:
            self.problem(column, f"is {len(value)} characters long; at most {max_length} fit")
        return value

    def token(self, column: str, allowed: Mapping[str, object]) -> str:
        value = self.values[column]
        if "\x00" in value:
            self.problem(column, "holds a NUL character")
        elif value.lower() not in allowed:
            self.problem(
                column,
                f"{value!r} is not one of {', '.join(key for key in allowed if key) or '-'}"
                + (" (or blank)" if "" in allowed else ""),
            )
        return value.lower()

    def unique(self, column: str, value: str, seen: dict[str, int]) -> None:
        if value and value in seen:
            self.problem(column, f"{value!r} is already on line {seen[value]}")
        elif value:
            seen[value] = self.line


@dataclass
class _UserRows:
    valid: dict[str, _UserRow]  # the rows without a problem, by sourcedId
    named: set[str] | None  # every sourcedId the file names; None when it could not be read


def _read_users(source: CsvSource, problems: list[RowProblem]) -> _UserRows:
    """Every row of users.csv checked."""
    User = get_user_model()
    username_field = User._meta.get_field(User.USERNAME_FIELD)
    given_name_length = User._meta.get_field("first_name").max_length
    family_name_length = User._meta.get_field("last_name").max_length
    email_length = User._meta.get_field("email").max_length
    rows = _CsvRows(source, file=USERS_FILE, required=USER_COLUMNS, problems=problems)
    valid: dict[str, _UserRow] = {}
    sourced_ids: dict[str, int] = {}
    usernames: dict[str, int] = {}
    for line, values in rows:
        check = _Checker(USERS_FILE, line, values, problems)
        sourced_id = check.text("sourcedId", required=True, max_length=EXTERNAL_ID_MAX_LENGTH)
        check.unique("sourcedId", sourced_id, sourced_ids)
        status = STATUSES.get(check.token("status", STATUSES), ACTIVE)
        enabled = BOOLEANS.get(check.token("enabledUser", BOOLEANS), False)
        username = check.text("username", required=True)
        if username:
            try:
                username_field.run_validators(username)
            except ValidationError as error:
                check.problem("username", f"{username[:40]!r}: {' '.join(error.messages)}")
            check.unique("username", username, usernames)
        given_name = check.text("givenName", max_length=given_name_length)
        family_name = check.text("familyName", max_length=family_name_length)
        email = check.text("email", max_length=email_length)
        if email and len(email) <= email_length:
            try:
                validate_email(email)
            except ValidationError:
                check.problem("email", f"{email!r} is not a valid email address")
        if not check.bad:
            valid[sourced_id] = _UserRow(
                line, sourced_id, status, enabled, username, given_name, family_name, email
            )
    return _UserRows(valid=valid, named=set(sourced_ids) if rows.usable else None)


def _read_enrollments(
    source: CsvSource, *, user_ids: set[str] | None, problems: list[RowProblem]
) -> list[_EnrollmentRow]:
    """Every row of enrollments.csv checked; ``user_ids`` are the sourcedIds of users.csv (None
    when it could not be read: then no userSourcedId is called unknown)."""
    enrollments: list[_EnrollmentRow] = []
    sourced_ids: dict[str, int] = {}
    rows = _CsvRows(source, file=ENROLLMENTS_FILE, required=ENROLLMENT_COLUMNS, problems=problems)
    for line, values in rows:
        check = _Checker(ENROLLMENTS_FILE, line, values, problems)
        sourced_id = check.text("sourcedId", required=True)
        check.unique("sourcedId", sourced_id, sourced_ids)
        status = STATUSES.get(check.token("status", STATUSES), ACTIVE)
        class_sourced_id = check.text("classSourcedId", required=True)
        user_sourced_id = check.text("userSourcedId", required=True)
        if user_sourced_id and user_ids is not None and user_sourced_id not in user_ids:
            check.problem("userSourcedId", f"{user_sourced_id!r} is not in {USERS_FILE}")
        role = values["role"].lower()
        if role not in ONEROSTER_ROLES and not role.startswith("ext:"):
            check.problem("role", f"{values['role']!r} is not a OneRoster role")
        if not check.bad:
            enrollments.append(
                _EnrollmentRow(line, sourced_id, status, class_sourced_id, user_sourced_id, role)
            )
    return enrollments


def _chosen_class(course: Course, classes: Sequence[str]) -> str:
    """The class whose enrolments the course takes (see the module's docstring)."""
    if course.slug in classes:
        return course.slug
    if len(classes) == 1:
        return classes[0]
    if not classes:
        raise ValidationFailed(f"{ENROLLMENTS_FILE} holds no enrolment", field="enrollments")
    shown = ", ".join(repr(name) for name in classes[:10])
    more = f" and {len(classes) - 10} more" if len(classes) > 10 else ""
    raise ValidationFailed(
        f"{ENROLLMENTS_FILE} holds the classes {shown}{more}, and none of them is this course "
        f"({course.slug!r}): send the enrolments of one class, or give the course's class the "
        "course's slug as its sourcedId",
        field="enrollments",
        extra={"classes": list(classes)},
    )


@dataclass(frozen=True)
class _Planned:
    user: _UserRow
    role: str  # an Enrollment.Role value


@dataclass(frozen=True)
class _Plan:
    class_sourced_id: str
    enrollments: list[_Planned]
    skipped: int


def _problem_order(problem: RowProblem) -> tuple[int, int]:
    return (0 if problem.file == USERS_FILE else 1, problem.line)


def _plan(*, course: Course, users: CsvSource, enrollments: CsvSource) -> _Plan:
    """Both files read and checked: the class, its enrolments to import, how many are skipped.

    Raises :class:`RosterInvalid` listing every bad row, or ValidationFailed when the class of
    the course cannot be told.
    """
    problems: list[RowProblem] = []
    user_rows = _read_users(users, problems)
    enrollment_rows = _read_enrollments(enrollments, user_ids=user_rows.named, problems=problems)
    classes = list(dict.fromkeys(row.class_sourced_id for row in enrollment_rows))
    try:
        class_sourced_id = _chosen_class(course, classes)
    except ValidationFailed:
        if problems:  # the bad rows may be why: report them first
            raise RosterInvalid(sorted(problems, key=_problem_order)) from None
        raise
    planned: list[_Planned] = []
    skipped = 0
    enrolled_on: dict[str, int] = {}  # userSourcedId -> line of their enrolment in the class
    for row in enrollment_rows:
        if row.class_sourced_id != class_sourced_id:
            continue
        user = user_rows.valid.get(row.user_sourced_id)
        if row.status == TO_BE_DELETED or (user is not None and user.status == TO_BE_DELETED):
            skipped += 1
            continue
        role = COURSE_ROLES.get(row.role)
        if role is None:
            problems.append(
                RowProblem(
                    ENROLLMENTS_FILE,
                    row.line,
                    "role",
                    f"{row.role!r} cannot take part in a course; only student, teacher, aide "
                    "and proctor enrolments can be imported",
                )
            )
        elif row.user_sourced_id in enrolled_on:
            problems.append(
                RowProblem(
                    ENROLLMENTS_FILE,
                    row.line,
                    "userSourcedId",
                    f"{row.user_sourced_id!r} is enrolled in class {class_sourced_id!r} on "
                    f"line {enrolled_on[row.user_sourced_id]} already; a person holds one role "
                    "in a course",
                )
            )
        else:
            enrolled_on[row.user_sourced_id] = row.line
            if user is not None:  # else users.csv's row is bad, and reported
                planned.append(_Planned(user=user, role=role))
    if problems:
        raise RosterInvalid(sorted(problems, key=_problem_order))
    return _Plan(class_sourced_id=class_sourced_id, enrollments=planned, skipped=skipped)


# --- writing ----------------------------------------------------------------------------------


def _accounts_by_username(usernames: Sequence[str]) -> dict[str, AbstractBaseUser]:
    User = get_user_model()
    found: dict[str, AbstractBaseUser] = {}
    for start in range(0, len(usernames), _QUERY_CHUNK):
        chunk = usernames[start : start + _QUERY_CHUNK]
        for account in User.objects.filter(**{f"{User.USERNAME_FIELD}__in": chunk}):
            found[account.get_username()] = account
    return found


def _account_create(row: _UserRow) -> tuple[AbstractBaseUser, bool]:
    """A new account for the row (unusable password), or the one another request just made."""
    User = get_user_model()
    account = User(
        **{User.USERNAME_FIELD: row.username},
        first_name=row.given_name,
        last_name=row.family_name,
        email=User.objects.normalize_email(row.email),
        is_active=row.enabled,
    )
    account.set_unusable_password()
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError:
        existing = User.objects.filter(**{User.USERNAME_FIELD: row.username}).first()
        if existing is None:
            raise
        return existing, False
    return account, True


def _external_id_conflicts(
    plan: _Plan,
    *,
    accounts: Mapping[str, AbstractBaseUser],
    by_external_id: Mapping[str, Enrollment],
) -> list[RowProblem]:
    """Rows whose sourcedId is already the external id of someone else in the course."""
    problems = []
    for planned in plan.enrollments:
        holder = by_external_id.get(planned.user.sourced_id)
        account = accounts.get(planned.user.username)
        if holder is not None and (account is None or holder.user_id != account.pk):
            problems.append(
                RowProblem(
                    USERS_FILE,
                    planned.user.line,
                    "sourcedId",
                    f"{planned.user.sourced_id!r} is the external id of "
                    f"{holder.user.get_username()!r} in this course, not of "
                    f"{planned.user.username!r}",
                )
            )
    return problems


@transaction.atomic
def roster_import(
    *,
    course: Course,
    users: CsvSource,
    enrollments: CsvSource,
    actor: AbstractBaseUser,
) -> RosterImportResult:
    """Enrol one class of a OneRoster 1.2 CSV export (``users.csv``, ``enrollments.csv``: text,
    bytes or an open file of either) in ``course``: see the module's docstring for the rules.

    Only the course's teachers and assistants may (:class:`PermissionDenied`). Every row is
    checked first; a bad one raises :class:`RosterInvalid` listing all of them, and nothing is
    written.
    """
    if not course_is_staff(user=actor, course=course):
        raise PermissionDenied("only the course's teachers and assistants may import its roster")
    plan = _plan(course=course, users=users, enrollments=enrollments)
    # Roster imports into one course run one at a time: both would create the same enrolments.
    list(Course.objects.select_for_update().filter(pk=course.pk).values_list("pk"))
    accounts = _accounts_by_username([planned.user.username for planned in plan.enrollments])
    enrolled: dict[int, Enrollment] = {}
    by_external_id: dict[str, Enrollment] = {}
    for enrollment in (
        Enrollment.objects.filter(course=course).select_related("user").order_by("pk")
    ):
        enrolled[enrollment.user_id] = enrollment
        if enrollment.external_id:
            by_external_id.setdefault(enrollment.external_id, enrollment)
    conflicts = _external_id_conflicts(plan, accounts=accounts, by_external_id=by_external_id)
    if conflicts:
        raise RosterInvalid(conflicts)

    counts = dict.fromkeys(
        (
            "users_created",
            "users_matched",
            "enrollments_created",
            "enrollments_updated",
            "unchanged",
        ),
        0,
    )
    for planned in plan.enrollments:
        account = accounts.get(planned.user.username)
        created = False
        if account is None:
            account, created = _account_create(planned.user)
        counts["users_created" if created else "users_matched"] += 1
        enrollment = enrolled.get(account.pk)
        if enrollment is None:
            enrollment_create(
                user=account,
                course=course,
                role=planned.role,
                external_id=planned.user.sourced_id,
            )
            counts["enrollments_created"] += 1
            continue
        # An external id something else set is kept: it may be what that something finds them by.
        external_id = enrollment.external_id or planned.user.sourced_id
        if enrollment.role == planned.role and enrollment.external_id == external_id:
            counts["unchanged"] += 1
            continue
        Enrollment.objects.filter(pk=enrollment.pk).update(
            role=planned.role, external_id=external_id
        )
        counts["enrollments_updated"] += 1

    result = RosterImportResult(
        class_sourced_id=plan.class_sourced_id, skipped=plan.skipped, **counts
    )
    audit_record(
        actor=actor,
        action="roster.import",
        target=course,
        course=course,
        after=asdict(result),
        note="OneRoster CSV import (users.csv, enrollments.csv)",
    )
    return result
