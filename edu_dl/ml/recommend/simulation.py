"""Offline evaluation of practice policies on simulated students.

A knowledge-tracing model trained on one group of real students plays the students (the
*simulator*); the recommender's own model, of another architecture and trained on other
students, is all a policy may consult. Each simulated student starts from the first part of a
real student's history, so starting points are as varied as a real class. At every step each
policy picks one practice item, the simulator draws the answer from its probability of success
(the same random draws for every policy, so policies differ only by their picks), and the
answer joins the history both models read. Gains are measured by the simulator: its mastery of
every skill after the steps minus before.

The ranking check uses real data only: at positions of held-out real sequences, whether the
skill the student actually practised next is among the policy's top five ready skills.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from edu_dl.ml.kt.data import FIRST_KNOWN, UNKNOWN
from edu_dl.ml.kt.inference import mastery_many, predict_next_many
from edu_dl.ml.kt.pipeline import RawSequence, TrainedKT
from edu_dl.ml.recommend.policy import (
    PolicyConfig,
    PracticeCandidate,
    SkillState,
    choose_practice,
    ready_skill_ranking,
    skill_readiness,
)

BASELINES = ("random", "weakest-skill", "in-order")
POLICIES = ("ours", *BASELINES)


@dataclass(frozen=True)
class PoolItem:
    key: Hashable
    skills: tuple[Hashable, ...]


@dataclass
class ModelView:
    """One trained KT model, asked about many students at once."""

    trained: TrainedKT
    device: torch.device
    skills: list[Hashable]  # the course's skills, in a fixed order

    def mastery(self, histories: Sequence[RawSequence]) -> np.ndarray:
        """(students, skills) probability of a typical item of each skill right now."""
        sequences = [self.trained.encode(h) for h in histories]
        vocabulary = self.trained.skill_vocabulary
        table = mastery_many(
            self.trained.model,
            sequences,
            vocabulary.size,
            device=self.device,
            max_length=self.trained.max_length,
        )
        columns = [vocabulary.index(s) for s in self.skills]
        out = table[:, columns]
        # Skills the model never saw: its prior for an unknown skill.
        unknown = [position for position, index in enumerate(columns) if index < FIRST_KNOWN]
        if unknown:
            prior = predict_next_many(
                self.trained.model,
                sequences,
                [((UNKNOWN,), UNKNOWN)],
                device=self.device,
                max_length=self.trained.max_length,
            )[:, 0]
            out[:, unknown] = prior[:, None]
        return out

    def _query(self, item: PoolItem) -> tuple[tuple[int, ...], int]:
        return (
            tuple(self.trained.skill_vocabulary.index(s) for s in item.skills),
            self.trained.item_vocabulary.index(item.key),
        )

    def success(self, histories: Sequence[RawSequence], pool: Sequence[PoolItem]) -> np.ndarray:
        """(students, items) probability of answering each pool item correctly next."""
        sequences = [self.trained.encode(h) for h in histories]
        return predict_next_many(
            self.trained.model,
            sequences,
            [self._query(item) for item in pool],
            device=self.device,
            max_length=self.trained.max_length,
        )

    def success_of_each(
        self, histories: Sequence[RawSequence], picks: Sequence[PoolItem]
    ) -> np.ndarray:
        """(students,) probability of success of each student's own pick."""
        unique = list(dict.fromkeys(picks))
        column = {item: position for position, item in enumerate(unique)}
        table = self.success(histories, unique)
        return table[np.arange(len(picks)), [column[p] for p in picks]]


def practice_pool(
    sequences: Sequence[RawSequence], *, per_skill: int, min_answers: int = 20
) -> list[PoolItem]:
    """Up to ``per_skill`` practice items per skill: the most answered ones (both models know
    them well), each with the skills it was tagged with."""
    counts: Counter = Counter()
    tags: dict[Hashable, tuple[Hashable, ...]] = {}
    for sequence in sequences:
        if sequence.items is None:
            continue
        for item, skills in zip(sequence.items, sequence.skills, strict=True):
            if item is None or not skills:
                continue
            counts[item] += 1
            tags.setdefault(item, tuple(skills))
    by_skill: dict[Hashable, list[Hashable]] = defaultdict(list)
    for item, count in counts.most_common():
        if count < min_answers:
            break
        primary = tags[item][0]
        if len(by_skill[primary]) < per_skill:
            by_skill[primary].append(item)
    return [
        PoolItem(item, tags[item])
        for skill in sorted(by_skill, key=str)
        for item in by_skill[skill]
    ]


@dataclass
class PolicyResult:
    gain_all: float
    gain_unmastered: float
    in_band_share: float
    distinct_skills: float
    success_rate: float
    picks_per_skill_max: float

    def as_dict(self) -> dict[str, float]:
        return {key: round(value, 5) for key, value in self.__dict__.items()}


@dataclass
class Classroom:
    """Simulated students, the practice pool and the two models."""

    simulator: ModelView
    recommender: ModelView
    pool: list[PoolItem]
    starts: list[RawSequence]
    config: PolicyConfig = field(default_factory=PolicyConfig)
    prerequisites: dict[Hashable, tuple[Hashable, ...]] = field(default_factory=dict)
    skill_order: list[Hashable] = field(default_factory=list)

    def _skill_states(
        self, mastery_row: np.ndarray, history: RawSequence
    ) -> dict[Hashable, SkillState]:
        evidence = Counter(s for tags in history.skills for s in tags)
        return {
            skill: SkillState(
                mastery=float(mastery_row[column]),
                evidence=evidence.get(skill, 0),
                prerequisites=self.prerequisites.get(skill, ()),
            )
            for column, skill in enumerate(self.recommender.skills)
        }

    def _pick(
        self,
        policy: str,
        histories: list[RawSequence],
        rng: random.Random,
    ) -> list[PoolItem]:
        pool = self.pool
        if policy == "random":
            return [pool[rng.randrange(len(pool))] for _ in histories]
        mastery = self.recommender.mastery(histories)
        skills = self.recommender.skills
        column = {skill: position for position, skill in enumerate(skills)}
        by_skill: dict[Hashable, list[PoolItem]] = defaultdict(list)
        for item in pool:
            by_skill[item.skills[0]].append(item)
        practisable = [s for s in skills if by_skill.get(s)]
        if policy == "weakest-skill":
            picks = []
            for row in mastery:
                weakest = min(practisable, key=lambda s: (row[column[s]], str(s)))
                picks.append(by_skill[weakest][rng.randrange(len(by_skill[weakest]))])
            return picks
        if policy == "in-order":
            order = [s for s in (self.skill_order or skills) if by_skill.get(s)]
            picks = []
            for row in mastery:
                target = next(
                    (s for s in order if row[column[s]] < self.config.target_mastery), order[-1]
                )
                picks.append(by_skill[target][rng.randrange(len(by_skill[target]))])
            return picks
        success = self.recommender.success(histories, pool)
        picks = []
        for student, history in enumerate(histories):
            states = self._skill_states(mastery[student], history)
            candidates = [
                PracticeCandidate(key=position, skills=item.skills, success=float(p))
                for position, (item, p) in enumerate(zip(pool, success[student], strict=True))
            ]
            recent = [tags[0] for tags in history.skills[-20:] if tags]
            chosen = choose_practice(states, candidates, recent_skills=recent, config=self.config)
            picks.append(pool[chosen.key] if chosen else pool[rng.randrange(len(pool))])
        return picks

    def run(
        self,
        policy: str,
        *,
        steps: int,
        seed: int,
        before: np.ndarray,
        on_step: Callable[[str, int], None] | None = None,
    ) -> PolicyResult:
        draws = np.random.default_rng(seed).random((len(self.starts), steps))
        rng = random.Random(f"{seed}:{policy}")
        histories = [
            RawSequence(
                key=s.key,
                skills=list(s.skills),
                correct=list(s.correct),
                items=list(s.items) if s.items is not None else [None] * len(s.correct),
            )
            for s in self.starts
        ]
        in_band = 0
        correct_total = 0
        practised: list[Counter] = [Counter() for _ in histories]
        for step in range(steps):
            picks = self._pick(policy, histories, rng)
            chance = self.simulator.success_of_each(histories, picks)
            low, high = self.config.band_low, self.config.band_high
            in_band += int(((chance >= low) & (chance <= high)).sum())
            for student, (history, item) in enumerate(zip(histories, picks, strict=True)):
                correct = int(draws[student, step] < chance[student])
                correct_total += correct
                history.skills.append(item.skills)
                history.correct.append(correct)
                history.items.append(item.key)
                practised[student][item.skills[0]] += 1
            if on_step:
                on_step(policy, step + 1)
        after = self.simulator.mastery(histories)
        gain = after - before
        unmastered = before < self.config.target_mastery
        per_student_unmastered = [
            float(gain[s][unmastered[s]].mean())
            for s in range(len(histories))
            if unmastered[s].any()
        ]
        picks_total = steps * len(histories)
        return PolicyResult(
            gain_all=float(gain.mean()),
            gain_unmastered=float(np.mean(per_student_unmastered))
            if per_student_unmastered
            else 0.0,
            in_band_share=in_band / picks_total,
            distinct_skills=float(np.mean([len(c) for c in practised])),
            success_rate=correct_total / picks_total,
            picks_per_skill_max=float(np.mean([max(c.values()) for c in practised])),
        )


def hit_rate_at_k(
    recommender: ModelView,
    sequences: Sequence[RawSequence],
    *,
    k: int = 5,
    positions_per_student: int = 20,
    seed: int = 0,
    config: PolicyConfig | None = None,
    prerequisites: dict[Hashable, tuple[Hashable, ...]] | None = None,
) -> dict[str, float]:
    """How often the skill practised next is among the top ``k`` ready skills, at sampled
    positions of real held-out sequences; the same for the weakest-``k`` skills and ``k``
    random skills, for scale. Also reported at skill switches (the next skill differs from the
    current one), where following the current skill cannot score."""
    config = config or PolicyConfig()
    prerequisites = prerequisites or {}
    rng = random.Random(seed)
    prefixes: list[RawSequence] = []
    targets: list[set] = []
    for sequence in sequences:
        if len(sequence) < 2:
            continue
        positions = list(range(1, len(sequence)))
        rng.shuffle(positions)
        for t in sorted(positions[:positions_per_student]):
            prefixes.append(
                RawSequence(
                    key=sequence.key,
                    skills=sequence.skills[:t],
                    correct=sequence.correct[:t],
                    items=None if sequence.items is None else sequence.items[:t],
                )
            )
            targets.append(set(sequence.skills[t]))
    hits = Counter()
    switches = Counter()
    switch_total = 0
    skills = recommender.skills
    for start in range(0, len(prefixes), 256):
        chunk = prefixes[start : start + 256]
        mastery = recommender.mastery(chunk)
        for row, prefix, target in zip(mastery, chunk, targets[start : start + 256], strict=True):
            evidence = Counter(s for tags in prefix.skills for s in tags)
            states = {
                skill: SkillState(
                    mastery=float(row[column]),
                    evidence=evidence.get(skill, 0),
                    prerequisites=prerequisites.get(skill, ()),
                )
                for column, skill in enumerate(skills)
            }
            readiness = skill_readiness(states, config)
            recent = [tags[0] for tags in prefix.skills[-20:] if tags]
            ours = ready_skill_ranking(readiness, recent_skills=recent, config=config)[:k]
            weakest = sorted(skills, key=lambda s: (states[s].mastery, str(s)))[:k]
            chance = rng.sample(skills, min(k, len(skills)))
            switch = bool(prefix.skills[-1]) and not (target & set(prefix.skills[-1]))
            switch_total += switch
            for name, top in (("ours", ours), ("weakest-skill", weakest), ("random", chance)):
                hit = bool(target & set(top))
                hits[name] += hit
                switches[name] += hit and switch
    total = len(prefixes) or 1
    return {
        "positions": len(prefixes),
        "ours": hits["ours"] / total,
        "weakest-skill": hits["weakest-skill"] / total,
        "random": hits["random"] / total,
        "switch_positions": switch_total,
        "ours_at_switches": switches["ours"] / (switch_total or 1),
        "weakest-skill_at_switches": switches["weakest-skill"] / (switch_total or 1),
    }


def simulate(
    classroom: Classroom,
    *,
    policies: Sequence[str],
    steps: int,
    seed: int,
    on_step: Callable[[str, int], None] | None = None,
) -> dict[str, Any]:
    """Every policy on the same simulated students; returns per-policy figures and timings."""
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"unknown policy {unknown[0]!r}; known: {', '.join(POLICIES)}")
    before = classroom.simulator.mastery(classroom.starts)
    results = {}
    seconds = {}
    for policy in policies:
        started = time.perf_counter()
        results[policy] = classroom.run(
            policy, steps=steps, seed=seed, before=before, on_step=on_step
        ).as_dict()
        seconds[policy] = round(time.perf_counter() - started, 1)
    unmastered = before < classroom.config.target_mastery
    return {
        "policies": results,
        "policy_seconds": seconds,
        "start_mastery_mean": round(float(before.mean()), 5),
        "start_unmastered_skills_mean": round(float(unmastered.sum(1).mean()), 2),
    }
