"""Forms of the content pages: they check the shape of what a person sent (which skills, which
file); the rules (no cycle, every row valid) are the services'."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from edu_dl.selectors.content import SkillNode

# The largest CSV file the import page takes. A catalogue of 10,000 resources or a skill graph of
# 50,000 edges is well under it; the whole file is read into memory and checked before anything
# is written, so the limit also bounds what one request may cost.
IMPORT_MAX_BYTES = 5 * 1024 * 1024

IMPORT_RESOURCES = "resources"
IMPORT_PREREQUISITES = "prerequisites"


def _skill_choices(skills: Sequence[SkillNode]) -> list[tuple[str, str]]:
    def label(skill: SkillNode) -> str:
        if skill.external_id and skill.external_id != skill.name:
            return f"{skill.name} ({skill.external_id})"
        return skill.name

    return [("", _("Choose a skill"))] + [(str(skill.pk), label(skill)) for skill in skills]


class PrerequisiteAddForm(forms.Form):
    """Two skills of the course: ``prerequisite`` is to come before ``skill``. The choices are
    the skills the page already read, so the form costs no query."""

    prerequisite = forms.TypedChoiceField(label=_("Prerequisite (learnt first)"), coerce=int)
    skill = forms.TypedChoiceField(label=_("Skill that needs it"), coerce=int)

    def __init__(self, *args: Any, skills: Sequence[SkillNode], **kwargs: Any):
        super().__init__(*args, **kwargs)
        choices = _skill_choices(skills)
        self.fields["prerequisite"].choices = choices
        self.fields["skill"].choices = choices

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("skill") is not None and cleaned.get("skill") == cleaned.get("prerequisite"):
            raise forms.ValidationError(_("A skill cannot be a prerequisite of itself."))
        return cleaned


class PrerequisiteRemoveForm(forms.Form):
    """One edge of the graph, by the two skills' ids (hidden fields of the remove buttons)."""

    skill = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    prerequisite = forms.IntegerField(min_value=1)


class ContentImportForm(forms.Form):
    """A CSV file of resources or of prerequisite edges, at most :data:`IMPORT_MAX_BYTES`."""

    kind = forms.ChoiceField(
        label=_("What the file holds"),
        choices=[
            (IMPORT_RESOURCES, _("Study resources")),
            (IMPORT_PREREQUISITES, _("Prerequisites between skills")),
        ],
        widget=forms.RadioSelect,
        initial=IMPORT_RESOURCES,
    )
    file = forms.FileField(
        label=_("CSV file (UTF-8)"),
        widget=forms.ClearableFileInput(
            attrs={"accept": ".csv,text/csv", "aria-describedby": "file-help"}
        ),
    )
    create_missing_skills = forms.BooleanField(
        label=_("Create the skills the course does not have yet (prerequisites only)"),
        required=False,
    )

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        if upload.size is not None and upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is %(size)s; the largest file this page takes is %(limit)s."),
                code="too_large",
                params={
                    "size": filesizeformat(upload.size),
                    "limit": filesizeformat(IMPORT_MAX_BYTES),
                },
            )
        return upload

    def file_bytes(self) -> bytes:
        """The uploaded file's content (call after ``is_valid``). A file that grew past the
        limit while being read (a size the client misreported) is refused as well."""
        upload: UploadedFile = self.cleaned_data["file"]
        upload.seek(0)
        data = upload.read(IMPORT_MAX_BYTES + 1)
        if len(data) > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(limit)s, the largest file this page takes."),
                code="too_large",
                params={"limit": filesizeformat(IMPORT_MAX_BYTES)},
            )
        return data


def line_texts(data: bytes, lines: Iterable[int]) -> dict[int, str]:
    """The text of the given lines (1-based) of a file, for a report about them: bytes that are
    not UTF-8 are shown as U+FFFD, so that a person sees where the file went wrong."""
    wanted = set(lines)
    if not wanted:
        return {}
    last = max(wanted)
    texts: dict[int, str] = {}
    for number, raw in enumerate(data.splitlines(), start=1):
        if number > last:
            break
        if number in wanted:
            text = raw.decode("utf-8", errors="replace")
            texts[number] = text.removeprefix("\ufeff") if number == 1 else text
    return texts
