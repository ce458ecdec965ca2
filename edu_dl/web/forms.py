"""Forms of the pages: they check the shape of what a person typed; the rules are the services'."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from edu_dl.models import Item
from edu_dl.services.review import ACCEPT_MANY_MAX, FEEDBACK_MAX_LENGTH


class ItemChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Item) -> str:
        return str(obj)


class ReviewQueueFilterForm(forms.Form):
    """The review queue's filter (a GET form): one item of the course, or all of them."""

    item = ItemChoiceField(
        queryset=Item.objects.none(), required=False, empty_label=_("All items"), label=_("Item")
    )

    def __init__(self, *args: Any, items: QuerySet[Item], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["item"].queryset = items


class ReviewOverrideForm(forms.Form):
    """A teacher's own score and feedback. The scale is checked by the service; the field only
    carries it to the browser (min, max) so that most mistakes are caught before posting."""

    # data-shortcut: the field that review.js focuses on the "o" and "s" keys.
    score = forms.FloatField(
        label=_("Score"), widget=forms.NumberInput(attrs={"data-shortcut": "score"})
    )
    feedback = forms.CharField(
        label=_("Feedback to the student"),
        required=False,
        max_length=FEEDBACK_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 60}),
    )

    def __init__(self, *args: Any, scale_item: Item, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["score"].widget.attrs.update(
            {"min": f"{scale_item.min_score:g}", "max": f"{scale_item.max_score:g}"}
        )
        self.fields["score"].help_text = _("From %(min)s to %(max)s.") % {
            "min": f"{scale_item.min_score:g}",
            "max": f"{scale_item.max_score:g}",
        }


class ResponseIdsField(forms.Field):
    """A list of response ids posted as repeated hidden inputs."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {
        "invalid": _("Enter whole numbers only."),
        "too_many": _("At most %(limit)s responses can be accepted at once."),
    }

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        if not isinstance(value, list | tuple):
            value = [value]
        try:
            ids = [int(entry) for entry in value]
        except (TypeError, ValueError) as error:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from error
        if any(pk < 1 for pk in ids):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        if len(set(ids)) > ACCEPT_MANY_MAX:
            raise forms.ValidationError(
                self.error_messages["too_many"], code="too_many", params={"limit": ACCEPT_MANY_MAX}
            )
        return ids


class ReviewAcceptManyForm(forms.Form):
    """ "Accept all shown" on the queue page: the ids of the responses the page showed."""

    response_ids = ResponseIdsField()


class ReviewAcceptAboveForm(forms.Form):
    """ "Accept every suggestion with confidence of at least X%" on the queue page, for the
    whole course or one of its items. People think of confidence in percent; the service takes
    a share from 0 to 1 (:meth:`min_confidence_share`)."""

    min_confidence = forms.DecimalField(
        label=_("Confidence at least (%)"),
        min_value=Decimal(0),
        max_value=Decimal(100),
        max_digits=5,
        decimal_places=2,
        help_text=_("A percentage from 0 to 100."),
        widget=forms.NumberInput(attrs={"step": "any", "inputmode": "decimal"}),
    )
    item = ItemChoiceField(
        queryset=Item.objects.none(), required=False, empty_label=_("All items"), label=_("Item")
    )

    def __init__(self, *args: Any, items: QuerySet[Item], **kwargs: Any):
        kwargs.setdefault("auto_id", "accept-above-%s")
        super().__init__(*args, **kwargs)
        self.fields["item"].queryset = items

    def min_confidence_share(self) -> float:
        """The threshold as a share from 0 to 1, rounded as the typed decimal is (80.3 gives
        the float nearest 0.803, the one a stored 0.803 is), so that "at or above" holds."""
        return float(self.cleaned_data["min_confidence"] / Decimal(100))
