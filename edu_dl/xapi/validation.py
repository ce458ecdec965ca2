"""Checking xAPI 1.0.3 statements before anything is stored.

The statement is read into the pydantic models below, one per object of the xAPI 1.0.3 data
model (Part Two of the specification), with checks of our own for the formats it names; no
other xAPI library is used (the usual one, ralph, brings in a GPL IRI parser). The rules:

- no property is unknown, except inside ``extensions`` maps (whose keys must be IRIs);
- no value is null, and no property is an empty object, except inside ``extensions``; texts
  are not empty except ``result.response`` and ``correctResponsesPattern`` entries;
- types are JSON's own: a number sent as text, or a boolean as a number, is refused;
- IRIs have a scheme, a colon and RFC 3987 characters (``//`` + authority when given, at most
  one ``#``); language tags are RFC 5646 tags; ``id``, ``context.registration`` and a
  StatementRef's ``id`` are UUIDs in their hyphenated 8-4-4-4-12 form; ``timestamp`` and
  ``stored`` are ISO 8601 date-time texts (not numbers; the offset -00:00 is refused);
  ``result.duration`` is an ISO 8601 duration text; ``version`` is 1.0.x;
- an actor (and an agent or group as object, instructor or authority) is dispatched on its
  ``objectType`` and its inverse functional identifiers, so a bad one gets one clear message:
  an Agent has exactly one of mbox (a ``mailto:`` IRI of an address), mbox_sha1sum (40
  hexadecimal digits), openid (an IRI), account (homePage IRI and name); a Group at most one,
  and an anonymous Group (none) lists its members, who are Agents; ``context.team`` is a Group;
- the object is an Activity, Agent, Group, StatementRef or SubStatement (whose own object is
  not a SubStatement, and which has no id, stored, version or authority);
- ``result.score``: ``scaled`` in -1..1, ``min`` <= ``max``, ``raw`` between them when given;
- ``context.revision`` and ``context.platform`` only with an Activity as object;
- interaction components' ids are distinct within a list and hold no white space, and they
  (and ``correctResponsesPattern``) come with an ``interactionType``;
- a ``voided`` verb needs a StatementRef object;
- attachments need a ``fileUrl`` (the endpoint takes JSON, not multipart bodies) and a
  hexadecimal SHA-2 hash;
- identifiers that are kept in indexed columns are at most
  :data:`~edu_dl.xapi.models.MAX_IDENTIFIER_BYTES` long.

A naive timestamp is taken as UTC, like the answers of imported files.
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from edu_dl.xapi.models import MAX_IDENTIFIER_BYTES
from edu_dl.xapi.vocabulary import COURSE_EXTENSION, VERB_VOIDED

IFI_PROPERTIES = ("mbox", "mbox_sha1sum", "openid", "account")
OBJECT_TYPES = ("Activity", "Agent", "Group", "StatementRef", "SubStatement")
REQUIRED_PROPERTIES = ("actor", "verb", "object")
# Properties that must be JSON objects when present (a list or text there is a shape error).
OBJECT_PROPERTIES = ("actor", "verb", "object", "result", "context", "authority")
InteractionType = Literal[
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
]
INTERACTION_TYPES = get_args(InteractionType)
INTERACTION_COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")

CANONICAL_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
ISO_TIMESTAMP = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$", re.ASCII
)
NEGATIVE_ZERO_OFFSET = re.compile(r"-00(:?00)?$")
_NUMBER = r"(\d+(?:\.\d+)?)"
ISO_DURATION = re.compile(
    rf"^P(?!$)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$",
    re.ASCII,
)
# Seconds per unit of an ISO 8601 duration; a year and a month have no fixed length, so they
# are taken as 365 and 30 days (a learning activity lasting months is an odd duration anyway).
DURATION_UNIT_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)
# The lengths in hexadecimal digits of SHA-224, SHA-256, SHA-384 and SHA-512.
SHA2_HEX = re.compile(r"^(?:[0-9a-fA-F]{56}|[0-9a-fA-F]{64}|[0-9a-fA-F]{96}|[0-9a-fA-F]{128})$")
MBOX_SHA1SUM = re.compile(r"^[0-9a-fA-F]{40}$")


def _char_ranges(*ranges: tuple[int, int]) -> str:
    return "".join(f"{chr(low)}-{chr(high)}" for low, high in ranges)


# RFC 3987's ucschar and iprivate: the characters beyond ASCII that an IRI may hold as they are.
_UCSCHAR = _char_ranges(
    (0xA0, 0xD7FF),
    (0xF900, 0xFDCF),
    (0xFDF0, 0xFFEF),
    *((plane << 16, (plane << 16) + 0xFFFD) for plane in range(1, 14)),
    (0xE1000, 0xEFFFD),
)
_IPRIVATE = _char_ranges((0xE000, 0xF8FF), (0xF0000, 0xFFFFD), (0x100000, 0x10FFFD))
_PCT = "%[0-9A-Fa-f]{2}"
_UNRESERVED = rf"A-Za-z0-9\-._~{_UCSCHAR}"
_SUB_DELIMS = "!$&'()*+,;="
_IPCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
# An IRI after RFC 3987's grammar, a little wider where it helps no one to be exact (an IP
# literal is any bracketed run of address characters): scheme ":" ("//" authority path-abempty
# / path) ["?" query] ["#" fragment], with at least one character after the colon.
IRI_PATTERN = re.compile(
    rf"""^[A-Za-z][A-Za-z0-9+.\-]*:(?=.)
    (?:
        //(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?
        (?:\[[0-9A-Za-z:.\-_~{_SUB_DELIMS}]+\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*)
        (?::[0-9]*)?
        (?:/{_IPCHAR}*)*
      | (?!//)(?:{_IPCHAR}|/)*
    )
    (?:\?(?:{_IPCHAR}|[/?{_IPRIVATE}])*)?
    (?:\#(?:{_IPCHAR}|[/?])*)?$""",
    re.VERBOSE,
)
# A mailto IRI of one address: a dot-atom local part (RFC 5322 characters that an IRI may hold,
# percent-encoded ones and non-ASCII ones) and a domain of two labels or more.
_LOCAL_CHAR = rf"(?:[A-Za-z0-9!$&'*+/=_~\-{_UCSCHAR}]|{_PCT})"
_LABEL = rf"[A-Za-z0-9{_UCSCHAR}](?:[A-Za-z0-9\-{_UCSCHAR}]*[A-Za-z0-9{_UCSCHAR}])?"
MAILTO = re.compile(
    rf"^mailto:(?P<local>{_LOCAL_CHAR}+(?:\.{_LOCAL_CHAR}+)*)@(?P<domain>{_LABEL}(?:\.{_LABEL})+)$"
)
# RFC 5646 language tags (well-formed, not checked against the registry).
_LANGTAG = (
    r"(?:[a-z]{2,3}(?:-[a-z]{3}){0,3}|[a-z]{4}|[a-z]{5,8})"  # language and extlangs
    r"(?:-[a-z]{4})?"  # script
    r"(?:-(?:[a-z]{2}|[0-9]{3}))?"  # region
    r"(?:-(?:[a-z0-9]{5,8}|[0-9][a-z0-9]{3}))*"  # variants
    r"(?:-[a-wyz0-9](?:-[a-z0-9]{2,8})+)*"  # extensions
    r"(?:-x(?:-[a-z0-9]{1,8})+)?"  # private use
)
_GRANDFATHERED = (
    "en-GB-oed|i-ami|i-bnn|i-default|i-enochian|i-hak|i-klingon|i-lux|i-mingo|i-navajo|"
    "i-pwn|i-tao|i-tay|i-tsu|sgn-BE-FR|sgn-BE-NL|sgn-CH-DE|art-lojban|cel-gaulish|no-bok|"
    "no-nyn|zh-guoyu|zh-hakka|zh-min|zh-min-nan|zh-xiang"
)
LANGUAGE_TAG = re.compile(
    rf"^(?:{_LANGTAG}|x(?:-[a-z0-9]{{1,8}})+|{_GRANDFATHERED})$", re.IGNORECASE | re.ASCII
)

ACTOR_MESSAGE = (
    "must be an Agent with exactly one of mbox, mbox_sha1sum, openid, account (or a Group "
    "with at most one of them)"
)
AGENT_MESSAGE = "must be an Agent with exactly one of mbox, mbox_sha1sum, openid, account"
UUID_MESSAGE = "must be a UUID (8-4-4-4-12 hexadecimal digits)"
TIMESTAMP_MESSAGE = "must be an ISO 8601 date and time"
DURATION_MESSAGE = "must be an ISO 8601 duration"
MBOX_MESSAGE = "Invalid `mailto:email` value"


# --- Formats -------------------------------------------------------------------------------------


def _iri(value: str) -> str:
    # RFC 3987 lets some spaces beyond ASCII (U+3000, U+2028, ...) stand as they are: not here.
    if not IRI_PATTERN.fullmatch(value) or any(character.isspace() for character in value):
        raise ValueError(f"'{value}' is not a valid 'IRI'.")
    return value


def _language_tag(value: str) -> str:
    if not LANGUAGE_TAG.fullmatch(value):
        raise ValueError(f"'{value}' is not a valid RFC 5646 language tag.")
    return value


def _uuid(value: Any) -> uuid.UUID:
    if not (isinstance(value, str) and CANONICAL_UUID.fullmatch(value)):
        raise ValueError(UUID_MESSAGE)
    return uuid.UUID(value)


def _timestamp(value: Any) -> datetime:
    if not (isinstance(value, str) and ISO_TIMESTAMP.fullmatch(value)):
        raise ValueError(TIMESTAMP_MESSAGE)
    if NEGATIVE_ZERO_OFFSET.search(value):
        raise ValueError(f"{TIMESTAMP_MESSAGE} with a known offset (not -00:00)")
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(TIMESTAMP_MESSAGE) from None


def _duration(value: Any) -> str:
    if not (isinstance(value, str) and ISO_DURATION.fullmatch(value)):
        raise ValueError(DURATION_MESSAGE)
    return value


def _mbox(value: str) -> str:
    """The mailto IRI, its domain in lower case (domains ignore case)."""
    match = MAILTO.fullmatch(value)
    if match is None:
        raise ValueError(MBOX_MESSAGE)
    return f"mailto:{match['local']}@{match['domain'].lower()}"


def _mbox_sha1sum(value: str) -> str:
    if not MBOX_SHA1SUM.fullmatch(value):
        raise ValueError("must be the SHA-1 hash of a mailto IRI, as 40 hexadecimal digits")
    return value.lower()


def _sha2(value: str) -> str:
    if not SHA2_HEX.fullmatch(value):
        raise ValueError("must be the SHA-2 hash of the attachment, as hexadecimal digits")
    return value


def _component_id(value: str) -> str:
    if any(character.isspace() for character in value):
        raise ValueError("must not contain white space")
    return value


IRI = Annotated[str, AfterValidator(_iri)]
LanguageTag = Annotated[str, AfterValidator(_language_tag)]
LanguageMap = dict[LanguageTag, str]
# Any JSON value under an IRI: null, empty texts and empty objects included.
ExtensionMap = dict[IRI, Any]
Uuid = Annotated[uuid.UUID, BeforeValidator(_uuid)]
Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
Duration = Annotated[str, BeforeValidator(_duration)]
Mbox = Annotated[str, AfterValidator(_mbox)]
MboxSha1Sum = Annotated[str, AfterValidator(_mbox_sha1sum)]
Version = Annotated[str, StringConstraints(pattern=r"^1\.0\.[0-9]+$")]
MaybeEmptyText = Annotated[str, StringConstraints(min_length=0)]


# --- Models --------------------------------------------------------------------------------------


class XapiModel(BaseModel):
    """Unknown properties refused, JSON types taken strictly, no empty text."""

    model_config = ConfigDict(extra="forbid", strict=True, str_min_length=1, allow_inf_nan=False)


class Account(XapiModel):
    homePage: IRI
    name: str


class _Identified(XapiModel):
    """The inverse functional identifiers that an Agent or Group may have."""

    mbox: Mbox | None = None
    mbox_sha1sum: MboxSha1Sum | None = None
    openid: IRI | None = None
    account: Account | None = None

    @property
    def identifiers(self) -> list[str]:
        return [name for name in IFI_PROPERTIES if getattr(self, name) is not None]


class Agent(_Identified):
    objectType: Literal["Agent"] = "Agent"
    name: str | None = None

    @model_validator(mode="after")
    def _one_identifier(self) -> Agent:
        if len(self.identifiers) != 1:
            raise ValueError(AGENT_MESSAGE)
        return self


class Group(_Identified):
    objectType: Literal["Group"]
    name: str | None = None
    member: list[Agent] | None = None

    @model_validator(mode="after")
    def _identified_or_listed(self) -> Group:
        if len(self.identifiers) > 1:
            raise ValueError("a Group has at most one of mbox, mbox_sha1sum, openid, account")
        if not self.identifiers and self.member is None:
            raise ValueError(
                "an anonymous Group (without mbox, mbox_sha1sum, openid, account) needs member"
            )
        return self


def _agent_tag(value: Any) -> str | None:
    """The union member an actor goes to: its objectType and its identifiers."""
    if not isinstance(value, dict):
        return None
    identifiers = [name for name in IFI_PROPERTIES if name in value]
    kind = value.get("objectType", "Agent")
    if kind == "Agent" and len(identifiers) == 1:
        return "Agent"
    if kind == "Group" and len(identifiers) <= 1:
        return "Group"
    return None


Actor = Annotated[
    Annotated[Agent, Tag("Agent")] | Annotated[Group, Tag("Group")],
    Discriminator(_agent_tag, custom_error_type="actor", custom_error_message=ACTOR_MESSAGE),
]


class Verb(XapiModel):
    id: IRI
    display: LanguageMap | None = None


class InteractionComponent(XapiModel):
    id: Annotated[str, AfterValidator(_component_id)]
    description: LanguageMap | None = None


class ActivityDefinition(XapiModel):
    name: LanguageMap | None = None
    description: LanguageMap | None = None
    type: IRI | None = None
    moreInfo: IRI | None = None
    extensions: ExtensionMap | None = None
    interactionType: InteractionType | None = None
    correctResponsesPattern: list[MaybeEmptyText] | None = None
    choices: list[InteractionComponent] | None = None
    scale: list[InteractionComponent] | None = None
    source: list[InteractionComponent] | None = None
    target: list[InteractionComponent] | None = None
    steps: list[InteractionComponent] | None = None

    @field_validator(*INTERACTION_COMPONENT_LISTS)
    @classmethod
    def _distinct_ids(
        cls, components: list[InteractionComponent] | None
    ) -> list[InteractionComponent] | None:
        if components is not None and len({c.id for c in components}) != len(components):
            raise ValueError("the ids of interaction components must be distinct")
        return components

    @model_validator(mode="after")
    def _typed_interaction(self) -> ActivityDefinition:
        interaction = ("correctResponsesPattern", *INTERACTION_COMPONENT_LISTS)
        if self.interactionType is None and any(getattr(self, n) is not None for n in interaction):
            raise ValueError(f"interactionType is required with {', '.join(interaction)}")
        return self


class Activity(XapiModel):
    objectType: Literal["Activity"] | None = None
    id: IRI
    definition: ActivityDefinition | None = None


class StatementRef(XapiModel):
    objectType: Literal["StatementRef"]
    id: Uuid


class Score(XapiModel):
    scaled: Annotated[float, Field(ge=-1, le=1)] | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _raw_within_bounds(self) -> Score:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min must not be greater than max")
        if self.raw is not None and self.min is not None and self.raw < self.min:
            raise ValueError("raw must not be less than min")
        if self.raw is not None and self.max is not None and self.raw > self.max:
            raise ValueError("raw must not be greater than max")
        return self


class Result(XapiModel):
    score: Score | None = None
    success: bool | None = None
    completion: bool | None = None
    response: MaybeEmptyText | None = None
    duration: Duration | None = None
    extensions: ExtensionMap | None = None


def _activities_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return "Activity"
    return "Activities" if isinstance(value, list) else None


ContextActivity = Annotated[
    Annotated[Activity, Tag("Activity")] | Annotated[list[Activity], Tag("Activities")],
    Discriminator(
        _activities_tag,
        custom_error_type="context_activities",
        custom_error_message="must be an Activity or a list of Activities",
    ),
]


class ContextActivities(XapiModel):
    parent: ContextActivity | None = None
    grouping: ContextActivity | None = None
    category: ContextActivity | None = None
    other: ContextActivity | None = None


class Context(XapiModel):
    registration: Uuid | None = None
    instructor: Actor | None = None
    team: Group | None = None
    contextActivities: ContextActivities | None = None
    revision: str | None = None
    platform: str | None = None
    language: LanguageTag | None = None
    statement: StatementRef | None = None
    extensions: ExtensionMap | None = None


class Attachment(XapiModel):
    usageType: IRI
    display: LanguageMap
    description: LanguageMap | None = None
    contentType: str
    length: Annotated[int, Field(ge=0)]
    sha2: Annotated[str, AfterValidator(_sha2)]
    fileUrl: IRI | None = None


def _object_tag(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    kind = value.get("objectType", "Activity")
    if kind in ("Agent", "Group"):
        return _agent_tag(value)
    return kind if kind in OBJECT_TYPES else None


def _sub_object_tag(value: Any) -> str | None:
    tag = _object_tag(value)
    return None if tag == "SubStatement" else tag


_UNNESTED_MEMBERS = (
    Annotated[Activity, Tag("Activity")]
    | Annotated[Agent, Tag("Agent")]
    | Annotated[Group, Tag("Group")]
    | Annotated[StatementRef, Tag("StatementRef")]
)
SubStatementObject = Annotated[
    _UNNESTED_MEMBERS,
    Discriminator(
        _sub_object_tag,
        custom_error_type="object",
        custom_error_message=(
            "objectType must be one of Activity, Agent, Group, StatementRef (a SubStatement "
            "holds no other); an Agent has exactly one of mbox, mbox_sha1sum, openid, account"
        ),
    ),
]


class SubStatement(XapiModel):
    objectType: Literal["SubStatement"]
    actor: Actor
    verb: Verb
    object: SubStatementObject
    result: Result | None = None
    context: Context | None = None
    timestamp: Timestamp | None = None
    attachments: list[Attachment] | None = None


StatementObject = Annotated[
    _UNNESTED_MEMBERS | Annotated[SubStatement, Tag("SubStatement")],
    Discriminator(
        _object_tag,
        custom_error_type="object",
        custom_error_message=(
            f"objectType must be one of {', '.join(OBJECT_TYPES)}; an Agent has exactly one "
            "of mbox, mbox_sha1sum, openid, account"
        ),
    ),
]


class XapiStatement(XapiModel):
    """An xAPI 1.0.3 statement."""

    id: Uuid | None = None
    actor: Actor
    verb: Verb
    object: StatementObject
    result: Result | None = None
    context: Context | None = None
    timestamp: Timestamp | None = None
    stored: Timestamp | None = None
    authority: Actor | None = None
    version: Version | None = None
    attachments: list[Attachment] | None = None


# The loc entries that pydantic adds for union members and dict keys, not properties.
_LOC_TAGS = frozenset({*OBJECT_TYPES, "Activities", "[key]"})


# --- Checking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedStatement:
    """A valid statement and the facts the mapping needs, read once."""

    index: int
    statement_id: uuid.UUID
    # The statement as sent, with its id (given or assigned) and without ``stored``.
    raw: dict[str, Any]
    actor_key: str
    # The actor's identifiers, for recognising a student: kind (mbox, mbox_sha1sum, openid,
    # account; group for any Group) and value (the address, the hash, the URI, or the account
    # name).
    actor_kind: str
    actor_value: str
    verb: str
    object_type: str
    # The activity IRI, the referenced statement's id, or an agent's key.
    object_id: str
    timestamp: datetime | None
    success: bool | None = None
    scaled: float | None = None
    duration_s: float | None = None
    # Activity ids of context.contextActivities parent and grouping, and the course slug of the
    # course extension: where a statement may name its course.
    context_activities: tuple[str, ...] = field(default_factory=tuple)
    context_course_slug: str | None = None

    @property
    def is_voiding(self) -> bool:
        return self.verb == VERB_VOIDED


class StatementInvalid(Exception):
    """One statement broke a rule: ``where`` is the property path, ``message`` the reason."""

    def __init__(self, where: str, message: str):
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


def _path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if part in _LOC_TAGS:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _error_text(error: dict[str, Any]) -> StatementInvalid:
    where = _path(error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        return StatementInvalid(where, "unknown property")
    if kind == "missing":
        return StatementInvalid(where, "is required")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return StatementInvalid(where, "must be a JSON object")
    if kind == "list_type":
        return StatementInvalid(where, "must be a JSON array")
    message = str(error["msg"]).removeprefix("Value error, ")
    return StatementInvalid(where, message)


def _identifier_size(where: str, value: str) -> None:
    if len(value.encode()) > MAX_IDENTIFIER_BYTES:
        raise StatementInvalid(where, f"is longer than {MAX_IDENTIFIER_BYTES} bytes")


def _check_no_empty_values(statement: dict[str, Any]) -> None:
    """No null value and no empty object, outside ``extensions`` (walked without recursion:
    a deeply nested document cannot exhaust the stack)."""
    pending: list[tuple[str, Any]] = [("", statement)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, dict):
            children = [
                (f"{where}.{key}" if where else str(key), item, key == "extensions")
                for key, item in value.items()
            ]
        elif isinstance(value, list):
            children = [(f"{where}[{n}]", item, False) for n, item in enumerate(value)]
        else:
            continue
        for here, item, is_extensions in children:
            if item is None:
                raise StatementInvalid(here, "must not be null")
            if is_extensions:
                continue
            if isinstance(item, dict) and not item:
                raise StatementInvalid(here, "must not be an empty object")
        pending.extend(
            (here, item) for here, item, is_extensions in reversed(children) if not is_extensions
        )


def _check_shape(statement: dict[str, Any]) -> None:
    """What the models cannot report well: a missing or misshapen top-level property, an
    attachment without fileUrl, and empty values (before the models see them as wrong types)."""
    for name in REQUIRED_PROPERTIES:
        if name not in statement:
            raise StatementInvalid(name, "is required")
    for name in OBJECT_PROPERTIES:
        if name in statement and not isinstance(statement[name], dict):
            raise StatementInvalid(name, "must be a JSON object")
    attachments = statement.get("attachments")
    if isinstance(attachments, list):
        for position, attachment in enumerate(attachments):
            if isinstance(attachment, dict) and not attachment.get("fileUrl"):
                raise StatementInvalid(
                    f"attachments[{position}].fileUrl",
                    "is required: this endpoint takes JSON bodies, not multipart ones",
                )
    _check_no_empty_values(statement)


def _check_context(context: Context | None, target: Any, where: str) -> None:
    if context is None or isinstance(target, Activity):
        return
    if context.revision is not None or context.platform is not None:
        raise StatementInvalid(
            where, "revision and platform may be given only when the object is an Activity"
        )


def _duration_seconds(text: str) -> float:
    match = ISO_DURATION.fullmatch(text)
    assert match is not None
    return sum(
        float(amount) * unit
        for amount, unit in zip(match.groups(), DURATION_UNIT_SECONDS, strict=True)
        if amount is not None
    )


def actor_identity(agent: Agent | Group) -> tuple[str, str, str]:
    """(key, kind, value) of an Agent or Group model: see ``Statement.actor_key``. A Group's
    kind is ``group`` whatever identifies it: a group is never taken for one student."""
    group = isinstance(agent, Group)
    if agent.account is not None:
        name = agent.account.name
        key, kind, value = f"account:{agent.account.homePage} {name}", "account", name
    else:
        for kind in ("mbox", "mbox_sha1sum", "openid"):
            value = getattr(agent, kind)
            if value is not None:
                key = f"{kind}:{value}"
                break
        else:
            return "group:anonymous", "group", ""
    return key, "group" if group else kind, value


def _activity_ids(value: Activity | list[Activity] | None) -> list[str]:
    if value is None:
        return []
    activities = value if isinstance(value, list) else [value]
    return [activity.id for activity in activities]


def statement_check(statement: Any, *, index: int) -> CheckedStatement:
    """The checked facts of one statement; :class:`StatementInvalid` on the first problem."""
    if not isinstance(statement, dict):
        raise StatementInvalid("", "a statement must be a JSON object")
    _check_shape(statement)
    try:
        model = XapiStatement.model_validate(statement)
    except ValidationError as error:
        raise _error_text(error.errors()[0]) from None
    target = model.object
    _check_context(model.context, target, "context")
    if isinstance(target, SubStatement):
        _check_context(target.context, target.object, "object.context")
    verb = model.verb.id
    _identifier_size("verb.id", verb)
    if isinstance(target, Activity):
        object_type, object_id = "Activity", target.id
    elif isinstance(target, StatementRef):
        object_type, object_id = "StatementRef", str(target.id)
    elif isinstance(target, SubStatement):
        object_type, object_id = "SubStatement", ""
    else:
        object_type = target.objectType
        object_id = actor_identity(target)[0]
    _identifier_size("object.id", object_id)
    if verb == VERB_VOIDED and object_type != "StatementRef":
        raise StatementInvalid("object", "a voiding statement's object must be a StatementRef")
    actor_key, actor_kind, actor_value = actor_identity(model.actor)
    _identifier_size("actor", actor_key)

    timestamp = model.timestamp
    if timestamp is not None and timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    success = scaled = duration_s = None
    if model.result is not None:
        success = model.result.success
        if model.result.score is not None and model.result.score.scaled is not None:
            scaled = float(model.result.score.scaled)
        if model.result.duration is not None:
            duration_s = _duration_seconds(model.result.duration)
    context_activities: list[str] = []
    course_slug = None
    if model.context is not None:
        if model.context.contextActivities is not None:
            context_activities += _activity_ids(model.context.contextActivities.parent)
            context_activities += _activity_ids(model.context.contextActivities.grouping)
        for key, value in (model.context.extensions or {}).items():
            if key == COURSE_EXTENSION and isinstance(value, str):
                course_slug = value

    raw = copy.deepcopy(statement)
    raw.pop("stored", None)
    statement_id = model.id or uuid.uuid4()
    raw["id"] = raw.get("id") or str(statement_id)
    return CheckedStatement(
        index=index,
        statement_id=statement_id,
        raw=raw,
        actor_key=actor_key,
        actor_kind=actor_kind,
        actor_value=actor_value,
        verb=verb,
        object_type=object_type,
        object_id=object_id,
        timestamp=timestamp,
        success=success,
        scaled=scaled,
        duration_s=duration_s,
        context_activities=tuple(context_activities),
        context_course_slug=course_slug,
    )
