"""What a student should practise or study next, and the facts that say why.

The policy joins three signals, each of which a teacher can check:

1. **Readiness from mastery and prerequisites.** A skill is *mastered* at or above the target
   mastery, *ready* when it is not mastered and every prerequisite is, and *blocked* otherwise.
   Only ready skills are suggested; a blocked skill sends the student to its missing
   prerequisites instead, which are ready or blocked in turn.
2. **Practice in the target band.** Among ready skills the one in progress comes first for a
   few answers in a row, then the skills with the most left to learn, each recent answer on a
   skill lowering it a little so that practice spreads over several skills. Within a skill, the
   practice item is the one whose chance of success, by the knowledge-tracing model, lies in the
   band (default 60 % to 85 %): hard enough to learn from, easy enough not to discourage; a skill
   that has such an item counts a little more. That is where this policy parts from a plain
   weakest-skill rule, which drills the weakest skill with whatever item comes and so mostly
   with failures. The weights were chosen on simulated students (``evaluate_recommender``, two
   simulators that disagree about what helps), not on one file.
3. **What helped similar students** (resources only): the learned helpfulness model's
   probability, when a course has one; without it the term is neutral.

Variety (at most ``per_skill`` suggestions on one skill), no repeat of what the student
completed, and the teacher's pins and hides are applied last.

Pure Python and numpy: the scores are small vectorised sums, so one student's ranking over a
catalogue of thousands takes a few milliseconds, and the same function drives production and
the evaluation command's simulated students.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MASTERED = "mastered"
READY = "ready"
BLOCKED = "blocked"


@dataclass(frozen=True)
class PolicyConfig:
    target_mastery: float = 0.8
    band_low: float = 0.6
    band_high: float = 0.85
    count: int = 5
    per_skill: int = 2
    # Weights of the terms of a practice item's score.
    in_progress_weight: float = 0.6
    need_weight: float = 2.0
    band_weight: float = 1.0
    # A skill practised this many times in a row yields to another ready skill (variety) ...
    streak_limit: int = 3
    # ... and each recent answer on a skill (of the last 20) lowers its priority a little.
    spread_weight: float = 0.5
    # How much a skill with an item in the band is preferred (0: the band only picks the item).
    skill_band_weight: float = 0.3
    # Weights of the terms of a resource's score.
    need_weight: float = 1.0
    helpfulness_weight: float = 0.6
    difficulty_weight: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.target_mastery <= 1:
            raise ValueError("target_mastery must be in (0, 1]")
        if not 0 <= self.band_low < self.band_high <= 1:
            raise ValueError("the target band must satisfy 0 <= low < high <= 1")
        if self.count < 1 or self.per_skill < 1:
            raise ValueError("count and per_skill must be at least 1")


@dataclass(frozen=True)
class SkillState:
    """One skill as the student stands: mastery 0-1, how many answers inform it, and the
    skills to master first."""

    mastery: float
    evidence: int = 0
    prerequisites: tuple[Hashable, ...] = ()


@dataclass(frozen=True)
class SkillReadiness:
    skill: Hashable
    status: str  # MASTERED, READY or BLOCKED
    mastery: float
    evidence: int
    mastered_prerequisites: tuple[Hashable, ...] = ()
    missing_prerequisites: tuple[Hashable, ...] = ()
    # True for a student with no evidence at all, where only the starting skills are ready.
    starting: bool = False


@dataclass(frozen=True)
class PracticeCandidate:
    key: Hashable
    skills: tuple[Hashable, ...]
    success: float  # the model's probability that the student answers it correctly now


@dataclass(frozen=True)
class ResourceCandidate:
    key: Hashable
    skills: Mapping[Hashable, float]  # skill -> weight
    difficulty: float = 0.5
    helpfulness: float | None = None  # the learned model's probability that it helps


@dataclass
class Suggestion:
    kind: str  # "item" or "resource"
    key: Hashable
    skill: Hashable | None
    score: float
    facts: dict[str, Any] = field(default_factory=dict)
    rank: int = 0


def skill_readiness(
    skills: Mapping[Hashable, SkillState], config: PolicyConfig | None = None
) -> dict[Hashable, SkillReadiness]:
    """Mastered, ready or blocked, for every skill.

    A student with no evidence on any skill is new: only the starting skills (those without
    prerequisites) are ready, so a first suggestion never opens in the middle of the course.
    Prerequisites unknown to ``skills`` are ignored (a graph may name skills of another course).
    """
    config = config or PolicyConfig()
    target = config.target_mastery
    new_student = all(state.evidence == 0 for state in skills.values())
    result = {}
    for key, state in skills.items():
        prerequisites = [p for p in state.prerequisites if p in skills and p != key]
        if new_student:
            starting = not prerequisites
            result[key] = SkillReadiness(
                skill=key,
                status=READY if starting else BLOCKED,
                mastery=state.mastery,
                evidence=0,
                missing_prerequisites=tuple(prerequisites),
                starting=starting,
            )
            continue
        mastered = tuple(p for p in prerequisites if skills[p].mastery >= target)
        missing = tuple(p for p in prerequisites if skills[p].mastery < target)
        if state.mastery >= target:
            status = MASTERED
        elif missing:
            status = BLOCKED
        else:
            status = READY
        result[key] = SkillReadiness(
            skill=key,
            status=status,
            mastery=state.mastery,
            evidence=state.evidence,
            mastered_prerequisites=mastered,
            missing_prerequisites=missing,
        )
    return result


def _streak(recent: Sequence[Hashable]) -> tuple[Hashable | None, int]:
    """The skill of the latest answers and how many answers in a row were on it."""
    if not recent:
        return None, 0
    last = recent[-1]
    count = 0
    for skill in reversed(recent):
        if skill != last:
            break
        count += 1
    return last, count


def skill_priorities(
    readiness: Mapping[Hashable, SkillReadiness],
    *,
    recent_skills: Sequence[Hashable] = (),
    config: PolicyConfig | None = None,
) -> dict[Hashable, float]:
    """A priority for every ready skill (higher first): the skill in progress, then the ones
    with the most left to learn. Mastered and blocked skills are absent."""
    config = config or PolicyConfig()
    current, streak = _streak(recent_skills)
    practised = Counter(recent_skills[-20:])
    priorities = {}
    for key, state in readiness.items():
        if state.status != READY:
            continue
        need = min(max(1.0 - state.mastery / config.target_mastery, 0.0), 1.0)
        priority = config.need_weight * need
        if key == current and streak < config.streak_limit:
            # Finish what is in progress, for a few answers in a row.
            priority += config.in_progress_weight
        else:
            # Practice spread over several skills: each recent answer on a skill lowers it a
            # little (the first answers on a skill teach the most).
            priority -= config.spread_weight * min(practised[key], 10) / 10
        priorities[key] = priority
    return priorities


def ready_skill_ranking(
    readiness: Mapping[Hashable, SkillReadiness],
    *,
    recent_skills: Sequence[Hashable] = (),
    config: PolicyConfig | None = None,
) -> list[Hashable]:
    """Ready skills, best first (ties broken by lower mastery, then by key order)."""
    priorities = skill_priorities(readiness, recent_skills=recent_skills, config=config)
    return sorted(priorities, key=lambda key: (-priorities[key], readiness[key].mastery, str(key)))


def band_fit(success: np.ndarray, config: PolicyConfig) -> np.ndarray:
    """1 inside the target band, falling linearly to 0 at 0.35 outside it."""
    below = np.clip(config.band_low - success, 0.0, None)
    above = np.clip(success - config.band_high, 0.0, None)
    return np.clip(1.0 - (below + above) / 0.35, 0.0, 1.0)


def _take_with_variety(
    order: Iterable[int], skill_of: Sequence[Hashable | None], limit: int, count: int
) -> list[int]:
    taken: list[int] = []
    per_skill: dict[Hashable | None, int] = {}
    for index in order:
        skill = skill_of[index]
        if per_skill.get(skill, 0) >= limit:
            continue
        per_skill[skill] = per_skill.get(skill, 0) + 1
        taken.append(index)
        if len(taken) == count:
            break
    return taken


def rank_practice(
    skills: Mapping[Hashable, SkillState],
    items: Sequence[PracticeCandidate],
    *,
    recent_skills: Sequence[Hashable] = (),
    exclude: Iterable[Hashable] = (),
    config: PolicyConfig | None = None,
    count: int | None = None,
) -> list[Suggestion]:
    """Practice items on ready skills, best first, at most ``per_skill`` per skill: skills in
    priority order, and within a skill the items that best fit the target band."""
    config = config or PolicyConfig()
    readiness = skill_readiness(skills, config)
    priorities = skill_priorities(readiness, recent_skills=recent_skills, config=config)
    excluded = set(exclude)
    chosen_skill: list[Hashable | None] = []
    rows: list[int] = []
    skill_priority: list[float] = []
    for position, item in enumerate(items):
        if item.key in excluded:
            continue
        ready = [s for s in item.skills if s in priorities]
        if not ready:
            continue
        best = max(ready, key=lambda s: priorities[s])
        rows.append(position)
        chosen_skill.append(best)
        skill_priority.append(priorities[best])
    if not rows:
        return []
    success = np.array([items[p].success for p in rows], dtype=np.float64)
    fit = band_fit(success, config)
    middle = (config.band_low + config.band_high) / 2
    distance = np.abs(success - middle)
    priority = np.asarray(skill_priority)
    if config.skill_band_weight:
        # A skill whose best item sits in the band is worth a little more than one whose items
        # are all too hard or too easy.
        best_fit: dict[Hashable | None, float] = {}
        for skill, value in zip(chosen_skill, fit, strict=True):
            best_fit[skill] = max(best_fit.get(skill, 0.0), float(value))
        priority = priority + config.skill_band_weight * np.array(
            [best_fit[skill] for skill in chosen_skill]
        )
    score = priority + config.band_weight * fit
    # The skill first (the policy's choice of what to learn), then within it the item that fits
    # the band best, nearest the band's middle on ties.
    order = np.lexsort((np.arange(len(rows)), distance, -fit, -priority))
    taken = _take_with_variety(order, chosen_skill, config.per_skill, count or config.count)
    suggestions = []
    for rank, index in enumerate(taken, start=1):
        item = items[rows[index]]
        skill = chosen_skill[index]
        state = readiness[skill]
        suggestions.append(
            Suggestion(
                kind="item",
                key=item.key,
                skill=skill,
                score=round(float(score[index]), 4),
                rank=rank,
                facts={
                    "mastery": round(state.mastery, 4),
                    "success": round(float(success[index]), 4),
                    "in_band": bool(config.band_low <= success[index] <= config.band_high),
                    "band": [config.band_low, config.band_high],
                    "prerequisites_mastered": list(state.mastered_prerequisites),
                    "starting": state.starting,
                    "in_progress": bool(recent_skills) and recent_skills[-1] == skill,
                },
            )
        )
    return suggestions


def choose_practice(
    skills: Mapping[Hashable, SkillState],
    items: Sequence[PracticeCandidate],
    *,
    recent_skills: Sequence[Hashable] = (),
    exclude: Iterable[Hashable] = (),
    config: PolicyConfig | None = None,
) -> Suggestion | None:
    """The single next practice item; when no skill is ready (all mastered, or nothing but
    blocked skills have items), the item closest to the band on the least mastered skill."""
    ranked = rank_practice(
        skills, items, recent_skills=recent_skills, exclude=exclude, config=config, count=1
    )
    if ranked:
        return ranked[0]
    config = config or PolicyConfig()
    excluded = set(exclude)
    pool = [item for item in items if item.key not in excluded and item.skills]
    if not pool:
        return None
    fit = band_fit(np.array([item.success for item in pool]), config)
    lowest = np.array(
        [min(skills[s].mastery if s in skills else 1.0 for s in item.skills) for item in pool]
    )
    best = int(np.lexsort((lowest, -fit))[0])
    item = pool[best]
    return Suggestion(
        kind="item",
        key=item.key,
        skill=min(item.skills, key=lambda s: skills[s].mastery if s in skills else 1.0),
        score=round(float(fit[best]), 4),
        rank=1,
        facts={"success": round(item.success, 4), "fallback": True},
    )


def rank_resources(
    skills: Mapping[Hashable, SkillState],
    resources: Sequence[ResourceCandidate],
    *,
    completed: Iterable[Hashable] = (),
    hidden: Iterable[Hashable] = (),
    pinned: Sequence[Hashable] = (),
    recent_skills: Sequence[Hashable] = (),
    config: PolicyConfig | None = None,
    count: int | None = None,
) -> list[Suggestion]:
    """Resources teaching ready skills, best first.

    need: the resource's skill weights over ready skills, each scaled by how much is left to
    learn; helpfulness: the learned model's probability (0.5 when there is none); difficulty:
    how well the resource's difficulty matches the student's level on those skills. Pinned
    resources come first in the teacher's order (unless completed or hidden); hidden and
    completed ones never appear.
    """
    config = config or PolicyConfig()
    readiness = skill_readiness(skills, config)
    priorities = skill_priorities(readiness, recent_skills=recent_skills, config=config)
    skip = set(completed) | set(hidden)
    pinned_keys = [key for key in pinned if key not in skip]
    pinned_set = set(pinned_keys)
    by_key = {resource.key: resource for resource in resources}
    rows: list[ResourceCandidate] = []
    main_skill: list[Hashable | None] = []
    need = []
    level = []
    # Per ready skill, computed once: what is left to learn (0-1) and the mastery.
    left = {
        s: max(config.target_mastery - readiness[s].mastery, 0.0) / config.target_mastery
        for s in priorities
    }
    for resource in resources:
        if resource.key in skip or resource.key in pinned_set:
            continue
        weights = {s: w for s, w in resource.skills.items() if s in priorities and w > 0}
        if not weights:
            continue
        total = sum(resource.skills.values()) or 1.0
        ready_total = sum(weights.values())
        need.append(sum(w * (0.5 + 0.5 * left[s]) for s, w in weights.items()) / total)
        level.append(sum(w * readiness[s].mastery for s, w in weights.items()) / ready_total)
        main_skill.append(
            max(weights, key=lambda s: (weights[s] * (1 + priorities[s]), str(s)))
            if len(weights) > 1
            else next(iter(weights))
        )
        rows.append(resource)
    suggestions: list[Suggestion] = []
    for key in pinned_keys:
        resource = by_key.get(key)
        if resource is None:
            continue
        skill = max(resource.skills, key=lambda s: resource.skills[s]) if resource.skills else None
        suggestions.append(
            Suggestion(
                kind="resource",
                key=key,
                skill=skill,
                score=1e6,
                facts={
                    "pinned": True,
                    "mastery": round(readiness[skill].mastery, 4) if skill in readiness else None,
                },
            )
        )
    if rows:
        helpfulness = np.array(
            [0.5 if r.helpfulness is None else r.helpfulness for r in rows], dtype=np.float64
        )
        difficulty = np.array([r.difficulty for r in rows], dtype=np.float64)
        # Difficulty and mastery share the 0-1 scale: a resource a little above the student's
        # level on its skills suits best.
        match = 1.0 - np.abs(difficulty - np.clip(np.asarray(level) + 0.1, 0.0, 1.0))
        score = (
            config.need_weight * np.asarray(need)
            + config.helpfulness_weight * helpfulness
            + config.difficulty_weight * match
        )
        order = np.lexsort((np.arange(len(rows)), -score))
        limit = max((count or config.count) - len(suggestions), 0)
        for index in _take_with_variety(order, main_skill, config.per_skill, limit):
            resource = rows[index]
            skill = main_skill[index]
            state = readiness[skill]
            suggestions.append(
                Suggestion(
                    kind="resource",
                    key=resource.key,
                    skill=skill,
                    score=round(float(score[index]), 4),
                    facts={
                        "mastery": round(state.mastery, 4),
                        "prerequisites_mastered": list(state.mastered_prerequisites),
                        "starting": state.starting,
                        "helpfulness": None
                        if resource.helpfulness is None
                        else round(float(resource.helpfulness), 4),
                        "pinned": False,
                    },
                )
            )
    for rank, suggestion in enumerate(suggestions, start=1):
        suggestion.rank = rank
    # The teacher's pins are always shown; ``count`` bounds what the policy adds to them.
    return suggestions
