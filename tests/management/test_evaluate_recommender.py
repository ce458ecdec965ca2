"""evaluate_recommender on a tiny dataset in the AKT chunk format, made here."""

from __future__ import annotations

import json
import math
import random

import pytest
from django.core.management import CommandError, call_command

POLICY_KEYS = {"gain_all", "gain_unmastered", "in_band_share", "distinct_skills"}


@pytest.fixture
def akt_folder(tmp_path):
    """Five chunks of 12 students; 4 skills with 3 items each; answers follow a logistic model
    in which practice on a skill raises the chance on it."""
    rng = random.Random(7)
    folder = tmp_path / "tiny_akt"
    folder.mkdir()
    student = 0
    for chunk in range(1, 6):
        lines = []
        for _ in range(12):
            student += 1
            ability = rng.gauss(0, 1)
            practice = [0] * 4
            items, skills, correct = [], [], []
            for _ in range(40):
                skill = rng.randrange(4)
                item = 3 * skill + rng.randrange(3) + 1
                chance = 1 / (1 + math.exp(-(ability - 0.3 * (item % 3) + 0.3 * practice[skill])))
                practice[skill] += 1
                items.append(item)
                skills.append(skill + 1)
                correct.append(int(rng.random() < chance))
            lines += [
                f"{student},{1000 + student}",
                ",".join(map(str, items)),
                ",".join(map(str, skills)),
                ",".join(map(str, correct)),
            ]
        (folder / f"tiny_pid_test{chunk}.csv").write_text("\n".join(lines) + "\n")
    return folder


def run(folder, tmp_path, *extra):
    out = tmp_path / "report.json"
    call_command(
        "evaluate_recommender",
        "--format",
        "akt",
        "--data",
        str(folder),
        "--students",
        "5",
        "--steps",
        "3",
        "--epochs",
        "1",
        "--hit-positions",
        "3",
        "--pool-per-skill",
        "2",
        "--models-cache",
        str(tmp_path / "models"),
        "--json",
        str(out),
        *extra,
    )
    return json.loads(out.read_text())


def test_the_report_holds_every_policy_and_the_ranking_check(akt_folder, tmp_path):
    report = run(akt_folder, tmp_path)

    assert set(report["policies"]) == {"ours", "random", "weakest-skill", "in-order"}
    for figures in report["policies"].values():
        assert set(figures) >= POLICY_KEYS
        assert 0 <= figures["in_band_share"] <= 1
        assert 1 <= figures["distinct_skills"] <= 3
    assert 0 <= report["hit_rate_at_5"] <= 1
    assert report["simulator"]["model"] == "akt"
    assert report["recommender_model"]["model"] == "dkt-rasch"
    assert (report["students"], report["steps"], report["seed"]) == (5, 3, 0)
    assert report["pool_items"] == 8  # 4 skills x 2 items


def test_the_same_seed_gives_the_same_report_from_cached_models(akt_folder, tmp_path):
    first = run(akt_folder, tmp_path, "--policies", "ours,random")
    models = sorted(p.name for p in (tmp_path / "models").iterdir())

    second = run(akt_folder, tmp_path, "--policies", "ours,random")

    assert len(models) == 2
    assert second["policies"] == first["policies"]
    assert second["hit_rate_at_5"] == first["hit_rate_at_5"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--policies", "ours,greedy"], "unknown: \\['greedy'\\]"),
        (["--simulator-model", "dkt-rasch"], "another architecture"),
        (["--students", "0"], "at least 1"),
    ],
)
def test_bad_arguments_are_refused_by_name(akt_folder, tmp_path, arguments, message):
    with pytest.raises(CommandError, match=message):
        run(akt_folder, tmp_path, *arguments)
    assert not (tmp_path / "report.json").exists()


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("evaluate_recommender", "--format", "akt", "--data", str(tmp_path / "no"))
