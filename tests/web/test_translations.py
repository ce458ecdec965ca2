"""The Simplified Chinese catalogue of edu_dl: complete, placeholder-safe, compiled, and in use.

The catalogue is read with a small parser of its own (the PO format is simple and the project has
no PO library among its dependencies); GNU ``msgfmt`` is used where it is installed.
"""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone, translation

import edu_dl
from edu_dl.models import Assessment, AssessmentItem, Course, Enrollment, Item, Response, Submission
from edu_dl.services.rule_grading import REASON_REGEX_TIMEOUT
from tests.web.accounts import enroll, make_user

User = get_user_model()

LC_MESSAGES = Path(edu_dl.__file__).resolve().parent / "locale" / "zh_Hans" / "LC_MESSAGES"
PO_FILE = LC_MESSAGES / "django.po"
MO_FILE = LC_MESSAGES / "django.mo"

# A printf-style conversion as Python's %-formatting reads it: %(name)s, %d, %.2f, %% ...
CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa%]")
NAMED_PLACEHOLDER = re.compile(r"%\([^)]*\)[#0 +-]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa]")
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
HTML_ENTITY = re.compile(r"&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);")


# --- A small PO reader ---------------------------------------------------------------------------


@dataclass
class Entry:
    line: int
    flags: set[str] = field(default_factory=set)
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)  # 0 only, unless the entry is plural

    @property
    def key(self) -> str:
        """The entry's key as gettext stores it: the context, EOT, the msgid."""
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"

    @property
    def translations(self) -> list[str]:
        return [self.msgstr[index] for index in sorted(self.msgstr)]


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b"}


def _unquote(text: str, line: int) -> str:
    text = text.strip()
    assert text.startswith('"') and text.endswith('"'), f"line {line}: not a quoted string"
    return re.sub(r"\\(.)", lambda match: _ESCAPES[match.group(1)], text[1:-1])


def read_po(path: Path) -> list[Entry]:
    """The entries of a PO file, header included (msgid ""); obsolete (#~) entries left out."""
    entries: list[Entry] = []
    current: Entry | None = None
    target: tuple[str, int] | None = None  # the field that continuation lines extend
    keyword = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+(\".*\")\s*$")

    def finish() -> None:
        if current is not None and target is not None:
            entries.append(current)

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#~"):
            continue
        if line.startswith("#"):
            if target is not None and target[0] != "flags":
                finish()
                current, target = None, None
            if current is None:
                current, target = Entry(line=number), ("flags", 0)
            if line.startswith("#,"):
                current.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        match = keyword.match(line)
        if match:
            name, index, value = match.group(1), match.group(2), _unquote(match.group(3), number)
            if name in ("msgctxt", "msgid") and target is not None and target[0] == "msgstr":
                finish()
                current = None
            if current is None:
                current = Entry(line=number)
            if name == "msgstr":
                target = ("msgstr", int(index or 0))
                current.msgstr[target[1]] = value
            else:
                target = (name, 0)
                setattr(current, name, value)
            continue
        assert line.startswith('"') and target is not None, f"{path}:{number}: cannot read {raw!r}"
        value = _unquote(line, number)
        if target[0] == "msgstr":
            current.msgstr[target[1]] += value
        else:
            setattr(current, target[0], getattr(current, target[0]) + value)
    finish()
    return entries


@pytest.fixture(scope="module")
def catalogue() -> list[Entry]:
    assert PO_FILE.is_file(), f"{PO_FILE} is missing: run makemessages -l zh_Hans in edu_dl/"
    return read_po(PO_FILE)


def messages(entries: list[Entry]) -> list[Entry]:
    return [entry for entry in entries if entry.msgid]


# --- The catalogue -------------------------------------------------------------------------------


def test_the_reader_sees_the_whole_catalogue(catalogue):
    # Every msgid line of the file (less the header's) is one entry the reader found
    text = PO_FILE.read_text(encoding="utf-8")
    msgid_lines = len(re.findall(r'^msgid "', text, flags=re.MULTILINE))
    assert len(catalogue) == msgid_lines
    assert len(messages(catalogue)) > 500


def test_the_header_names_the_language_and_its_single_plural_form(catalogue):
    header = next(entry for entry in catalogue if entry.msgid == "" and entry.msgctxt is None)
    fields = dict(line.split(": ", 1) for line in header.msgstr[0].splitlines() if ": " in line)
    assert fields["Language"] == "zh_Hans"
    assert fields["Plural-Forms"] == "nplurals=1; plural=0;"
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert "fuzzy" not in header.flags


def test_every_message_is_translated_and_none_is_fuzzy(catalogue):
    untranslated = [e.msgid for e in messages(catalogue) if not all(e.translations)]
    fuzzy = [e.msgid for e in messages(catalogue) if "fuzzy" in e.flags]
    assert untranslated == []
    assert fuzzy == []


def test_plural_messages_have_exactly_the_one_chinese_form(catalogue):
    plurals = [entry for entry in messages(catalogue) if entry.msgid_plural is not None]
    assert plurals, "the catalogue has plural messages (blocktranslate count ...)"
    assert [entry.msgid for entry in plurals if sorted(entry.msgstr) != [0]] == []
    assert [
        entry.msgid
        for entry in messages(catalogue)
        if entry.msgid_plural is None and sorted(entry.msgstr) != [0]
    ] == []


def test_every_translation_keeps_the_placeholders_of_its_message(catalogue):
    problems = []
    for entry in messages(catalogue):
        # The one Chinese form stands for the singular and the plural: it may use the names of
        # either (e.g. "the last day" / "the last %(days)s days" -> "最近 %(days)s 天").
        sources = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural else [])
        python_format = "python-format" in entry.flags
        pattern = CONVERSION if python_format else NAMED_PLACEHOLDER
        expected = set().union(*(pattern.findall(source) for source in sources))
        for translated in entry.translations:
            found = set(pattern.findall(translated))
            if entry.msgid_plural is None and python_format:
                # A singular message: the same conversions, as many times each
                if sorted(pattern.findall(translated)) != sorted(pattern.findall(entry.msgid)):
                    problems.append((entry.msgid, translated))
            elif found != expected:
                problems.append((entry.msgid, translated))
    assert problems == []


def test_every_translation_keeps_the_html_of_its_message(catalogue):
    problems = [
        (entry.msgid, translated)
        for entry in messages(catalogue)
        for translated in entry.translations
        if sorted(HTML_TAG.findall(translated)) != sorted(HTML_TAG.findall(entry.msgid))
        or sorted(HTML_ENTITY.findall(translated)) != sorted(HTML_ENTITY.findall(entry.msgid))
    ]
    assert problems == []


def test_technical_names_are_left_untranslated(catalogue):
    by_msgid = {entry.msgid: entry.translations[0] for entry in messages(catalogue)}
    for msgid, kept in [
        ("validated QWK %(qwk)s", "QWK"),
        ("Import from a CSV file", "CSV"),
        ("LTI 1.3 tool", "LTI 1.3"),
        ("xAPI statements", "xAPI"),
    ]:
        assert kept in by_msgid[msgid]


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU msgfmt is not installed")
def test_msgfmt_checks_the_catalogue_and_finds_it_complete(tmp_path):
    result = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(tmp_path / "check.mo"), str(PO_FILE)],
        capture_output=True,
        text=True,
        check=False,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    assert result.returncode == 0, result.stderr
    statistics = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ translated messages\.", statistics), result.stderr
    assert "warning" not in result.stderr


# --- The compiled catalogue ----------------------------------------------------------------------


def compiled(path: Path) -> dict:
    with path.open("rb") as handle:
        return dict(gettext.GNUTranslations(handle)._catalog)


def test_the_compiled_catalogue_holds_exactly_the_translations_of_the_po(catalogue):
    # (Content, not modification times: a fresh git checkout writes both files in any order.)
    assert MO_FILE.is_file(), f"{MO_FILE} is missing: run compilemessages -l zh_Hans in edu_dl/"
    expected = {}
    for entry in messages(catalogue):
        if entry.msgid_plural is None:
            expected[entry.key] = entry.msgstr[0]
        else:
            for index, translated in entry.msgstr.items():
                expected[(entry.key, index)] = translated
    in_mo = {key: value for key, value in compiled(MO_FILE).items() if key != ""}
    assert sorted(set(expected) - set(in_mo), key=str) == [], "compile the catalogue again"
    assert sorted(set(in_mo) - set(expected), key=str) == [], "compile the catalogue again"
    assert [key for key in expected if in_mo[key] != expected[key]] == []


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU msgfmt is not installed")
def test_the_compiled_catalogue_is_what_msgfmt_makes_of_the_po_now(tmp_path):
    fresh = tmp_path / "django.mo"
    subprocess.run(
        ["msgfmt", "--check-format", "-o", str(fresh), str(PO_FILE)],
        check=True,
        capture_output=True,
    )
    # The messages, not the header: makemessages alone only moves its POT-Creation-Date
    messages_now = {key: value for key, value in compiled(fresh).items() if key != ""}
    assert {key: value for key, value in compiled(MO_FILE).items() if key != ""} == messages_now


def test_django_finds_the_chinese_catalogue():
    with translation.override("zh-hans"):
        assert translation.gettext("My results") == "我的成绩"
        assert translation.gettext("Grading queue") == "批改队列"
        assert translation.ngettext("%(count)s skill", "%(count)s skills", 3) == "%(count)s 个技能"
    with translation.override("en"):
        assert translation.gettext("My results") == "My results"


# --- Pages in Chinese ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _english_afterwards():
    """The middleware activates the requested language in this thread: leave it as it was."""
    yield
    translation.deactivate()


@pytest.fixture
def school(db):
    """Algebra with a teacher, a student, a published quiz and one answer waiting for review."""
    algebra = Course.objects.create(slug="algebra", title="Algebra")
    teacher = make_user("teacher")
    alice = make_user("alice", first_name="Alice", last_name="Able")
    enroll(teacher, algebra, Enrollment.Role.TEACHER)
    enroll(alice, algebra)
    sum_item = Item.objects.create(course=algebra, kind=Item.Kind.NUMERIC, title="Two plus two")
    essay = Item.objects.create(course=algebra, kind=Item.Kind.ESSAY, title="Why add")
    quiz = Assessment.objects.create(course=algebra, title="Quiz one")
    AssessmentItem.objects.create(assessment=quiz, item=sum_item, position=1)
    AssessmentItem.objects.create(assessment=quiz, item=essay, position=2)
    submission = Submission.objects.create(
        student=alice,
        assessment=quiz,
        status=Submission.Status.NEEDS_REVIEW,
        submitted_at=timezone.now(),
    )
    Response.objects.create(
        submission=submission, item=sum_item, score=1, released=True, grade_source="rule"
    )
    Response.objects.create(
        submission=submission,
        item=essay,
        answer="Because.",
        score=0.5,
        confidence=0.4,
        grade_source="model",
        status=Response.Status.NEEDS_REVIEW,
        released=False,
    )
    return {"algebra": algebra, "teacher": teacher, "alice": alice}


def choose_chinese(client, next_url: str):
    """What the language switch in the footer does: POST to set_language, then follow."""
    response = client.post(
        reverse("set_language"), {"language": "zh-hans", "next": next_url}, follow=True
    )
    assert response.redirect_chain[-1][0] == next_url
    return response


def test_a_student_who_picks_chinese_sees_their_course_page_in_chinese(client, school):
    client.force_login(school["alice"])
    course_url = reverse("edu_dl:course_detail", kwargs={"slug": "algebra"})
    english = client.get(course_url).content.decode()
    assert '<html lang="en"' in english
    assert "My results" in english

    choose_chinese(client, course_url)
    content = client.get(course_url).content.decode()

    assert '<html lang="zh-hans"' in content
    # The course tabs
    for tab in ("我的成绩", "我的进度", "接下来学什么"):
        assert tab in content
    assert "My results" not in content
    assert "What to study next" not in content
    # The assessments table and the footer's language switch
    assert "我的测验" in content
    assert '<option value="zh-hans" lang="zh-hans" selected>简体中文</option>' in content
    assert "切换语言" in content


def test_a_teacher_who_picks_chinese_sees_the_grading_queue_in_chinese(client, school):
    client.force_login(school["teacher"])
    queue_url = reverse("edu_dl:review_queue", kwargs={"slug": "algebra"})

    choose_chinese(client, queue_url)
    content = client.get(queue_url).content.decode()

    assert '<html lang="zh-hans"' in content
    assert "批改队列" in content
    assert "待复核的作答" in content
    assert "采纳 0.50 分" in content
    assert "Grading queue" not in content
    assert "Answers to review" not in content


def test_the_language_stays_with_the_browser_not_the_site(client, school):
    # Given a student who chose Chinese
    client.force_login(school["alice"])
    course_url = reverse("edu_dl:course_detail", kwargs={"slug": "algebra"})
    choose_chinese(client, course_url)
    # When another visitor opens the same page
    other = type(client)()
    other.force_login(school["alice"])
    content = other.get(course_url).content.decode()
    # Then they still see English
    assert '<html lang="en"' in content
    assert "My results" in content


def test_a_teacher_who_picks_chinese_reads_why_a_rule_left_an_answer_to_them_in_chinese(
    client, school
):
    # given an answer a regex key took too long on, waiting with the rule's reason (stored in
    # English, so the API and every reader see one text)
    response = Response.objects.get(status=Response.Status.NEEDS_REVIEW)
    response.review_reason = REASON_REGEX_TIMEOUT
    response.score = None
    response.save(update_fields=["review_reason", "score"])
    client.force_login(school["teacher"])
    queue_url = reverse("edu_dl:review_queue", kwargs={"slug": "algebra"})

    # when the teacher reads the queue in Chinese
    choose_chinese(client, queue_url)
    content = client.get(queue_url).content.decode()

    # then the reason is in Chinese
    with translation.override("zh-hans"):
        chinese = translation.gettext(REASON_REGEX_TIMEOUT)
    assert chinese != REASON_REGEX_TIMEOUT
    assert f"<td>{chinese}</td>" in content
    assert "took too long" not in content
