"""The example config documents every key: it must load and equal the quick profile."""

from __future__ import annotations

from pathlib import Path

from vmvc.config import Config, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "example.toml"


def _keys(model: type, prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
            keys |= _keys(annotation, f"{prefix}{name}.")
        else:
            keys.add(f"{prefix}{name}")
    return keys


def test_example_loads_and_matches_the_quick_profile() -> None:
    assert load_config(None, EXAMPLE) == load_config("quick")


def test_example_mentions_every_key() -> None:
    text = EXAMPLE.read_text()
    missing = [key for key in _keys(Config) if key.split(".")[-1] not in text]
    assert missing == []
