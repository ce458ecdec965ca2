"""The form of the student portal's assessment page: one field per item, drafts and handing in.

They check the shape of what a student typed and put each answer in the form the services take;
whether an answer is valid is decided by :func:`edu_dl.services.rule_grading.answer_validate`,
which the form asks so that its message can stand beside the item it is about.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django import forms
from django.forms.boundfield import BoundField
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from edu_dl.conf import edu_settings
from edu_dl.models import Item
from edu_dl.services.errors import ValidationFailed
from edu_dl.services.rule_grading import answer_is_empty, answer_validate

ACTION_SAVE = "save"
ACTION_SUBMIT = "submit"
ACTION_DISCARD = "discard"
# A token is not a secret: it only tells one rendering of the form from another.
FORM_TOKEN_PATTERN = r"^[0-9a-f]{32}$"  # noqa: S105
# Enough for any number a student types; longer texts are not numbers anyway.
NUMBER_MAX_LENGTH = 100


def new_form_token() -> str:
    """A fresh token for one rendering of the form: its submissions share an idempotency key,
    so that a double click hands in once."""
    return secrets.token_hex(16)


def item_field_name(item: Item) -> str:
    return f"item_{item.pk}"


class AnswerTextField(forms.CharField):
    """A text answer kept as written, but with the browser's CRLF line breaks as LF: a textarea
    sends CRLF and counts a line break as one character, as the server must when it checks the
    length."""

    def to_python(self, value: Any) -> str:
        text = super().to_python(value)
        return text.replace("\r\n", "\n").replace("\r", "\n")


def _display_number(value: Any) -> Any:
    """A number from a draft as the student would type it (4.0 -> "4")."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    return value


def _answer_field(item: Item, *, label: str) -> forms.Field:
    limit = edu_settings.GRADING_MAX_ANSWER_CHARS
    kind = item.kind
    if kind in (Item.Kind.SINGLE_CHOICE, Item.Kind.MULTIPLE_CHOICE):
        choices = [
            (str(option["id"]), str(option.get("text", option["id"]))) for option in item.options
        ]
        if kind == Item.Kind.SINGLE_CHOICE:
            return forms.ChoiceField(
                label=label, choices=choices, required=False, widget=forms.RadioSelect
            )
        return forms.MultipleChoiceField(
            label=label, choices=choices, required=False, widget=forms.CheckboxSelectMultiple
        )
    if kind == Item.Kind.NUMERIC:
        return forms.CharField(
            label=label,
            required=False,
            max_length=NUMBER_MAX_LENGTH,
            widget=forms.TextInput(
                attrs={"inputmode": "decimal", "autocomplete": "off", "size": 12}
            ),
        )
    if kind == Item.Kind.EXACT_TEXT:
        return AnswerTextField(
            label=label,
            required=False,
            strip=False,
            max_length=limit,
            widget=forms.TextInput(attrs={"autocomplete": "off", "size": 40}),
        )
    rows = 16 if kind == Item.Kind.ESSAY else 4
    return AnswerTextField(
        label=label,
        required=False,
        strip=False,
        max_length=limit,
        widget=forms.Textarea(attrs={"rows": rows, "cols": 80}),
    )


@dataclass(frozen=True)
class Question:
    """One item of the form as its template draws it."""

    number: int
    item: Item
    field: BoundField

    @property
    def is_choice(self) -> bool:
        return self.item.kind in (Item.Kind.SINGLE_CHOICE, Item.Kind.MULTIPLE_CHOICE)

    @property
    def is_multiple(self) -> bool:
        return self.item.kind == Item.Kind.MULTIPLE_CHOICE

    @property
    def counts_characters(self) -> bool:
        return self.item.kind in (Item.Kind.SHORT_ANSWER, Item.Kind.ESSAY)

    @property
    def length(self) -> int:
        """How many characters the answer shown in the field has (for the counter)."""
        value = self.field.value()
        return len(value) if isinstance(value, str) else 0

    @property
    def described_by(self) -> str:
        """The ids of what describes the input: the prompt, the character counter, the error."""
        auto_id = self.field.auto_id
        ids = []
        if self.item.prompt:
            ids.append(f"{auto_id}_prompt")
        if self.counts_characters:
            ids.append(f"{auto_id}_count")
        if self.field.errors:
            ids.append(f"{auto_id}_error")
        return " ".join(ids)

    @property
    def widget(self) -> str:
        """The input of a text or numeric item, described by its prompt, counter and error."""
        described_by = self.described_by
        return self.field.as_widget(
            attrs={"aria-describedby": described_by} if described_by else None
        )


class AssessmentTakeForm(forms.Form):
    """One field per item of the assessment (named ``item_<id>``), the token of this rendering,
    and what the student asked: save a draft, hand in, or discard the draft.

    ``answers`` (after ``is_valid``) maps every item's id to its answer in the services' form:
    an option id, a list of option ids, a numeric text, a text; None when unanswered.
    """

    form_token = forms.RegexField(
        regex=FORM_TOKEN_PATTERN,
        widget=forms.HiddenInput,
        error_messages={
            "required": _("This page is out of date: reload it and answer again."),
            "invalid": _("This page is out of date: reload it and answer again."),
        },
    )
    action = forms.ChoiceField(
        choices=[
            (ACTION_SAVE, _("Save draft")),
            (ACTION_SUBMIT, _("Hand in")),
            (ACTION_DISCARD, _("Discard draft")),
        ],
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": _("Choose “Save draft” or “Hand in”.")},
    )
    hand_in_unanswered = forms.BooleanField(
        label=_("Hand in even if some questions have no answer"), required=False
    )

    def __init__(
        self,
        *args: Any,
        items: list[Item],
        draft_answers: dict[int, Any] | None = None,
        **kwargs: Any,
    ):
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("form_token", new_form_token())
        super().__init__(*args, **kwargs)
        self.items = items
        self.answers: dict[int, Any] = {}
        draft_answers = draft_answers or {}
        for number, item in enumerate(items, start=1):
            name = item_field_name(item)
            if item.title:
                label = _("%(number)s. %(title)s") % {"number": number, "title": item.title}
            else:
                label = _("Question %(number)s") % {"number": number}
            self.fields[name] = _answer_field(item, label=str(label))
            if item.pk in draft_answers:
                self.initial[name] = _display_number(draft_answers[item.pk])

    @property
    def questions(self) -> list[Question]:
        return [
            Question(number=number, item=item, field=self[item_field_name(item)])
            for number, item in enumerate(self.items, start=1)
        ]

    @property
    def chosen_action(self) -> str:
        return self.cleaned_data.get("action") or ACTION_SAVE

    def _answer_of(self, item: Item) -> Any:
        value = self.cleaned_data.get(item_field_name(item))
        if value in (None, "", []):
            return None
        return value

    def _refusal(self, item: Item, error: ValidationFailed, answer: Any) -> str:
        """The message beside an item whose answer the service refused, in the reader's
        language for the mistakes a student makes."""
        if item.kind == Item.Kind.NUMERIC:
            return str(
                _(
                    "Enter a number, such as 4.5 or -3: digits with a point for decimals "
                    "(not a comma)."
                )
            )
        limit = edu_settings.GRADING_MAX_ANSWER_CHARS
        if isinstance(answer, str) and len(answer) > limit:
            return str(_("At most %(limit)s characters, please.") % {"limit": limit})
        return error.message

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        unanswered = []
        for item in self.items:
            name = item_field_name(item)
            if name in self.errors:
                continue
            answer = self._answer_of(item)
            try:
                answer_validate(item=item, answer=answer)
            except ValidationFailed as error:
                self.add_error(name, self._refusal(item, error, answer))
                continue
            self.answers[item.pk] = answer
            if answer_is_empty(item, answer):
                unanswered.append(item)
        if (
            cleaned.get("action") == ACTION_SUBMIT
            and unanswered
            and not cleaned.get("hand_in_unanswered")
        ):
            for item in unanswered:
                self.add_error(item_field_name(item), _("This question has no answer yet."))
            self.add_error(
                None,
                ngettext(
                    "%(count)d question has no answer. Answer it, or tick “Hand in even if "
                    "some questions have no answer”.",
                    "%(count)d questions have no answer. Answer them, or tick “Hand in even "
                    "if some questions have no answer”.",
                    len(unanswered),
                )
                % {"count": len(unanswered)},
            )
        return cleaned

    def add_service_error(self, *, message: str, item_id: int | None) -> None:
        """Show a service's refusal beside its item (when it names one of the form's) or at
        the top of the form."""
        names = {item.pk: item_field_name(item) for item in self.items}
        self.add_error(names.get(item_id) if item_id is not None else None, message)
