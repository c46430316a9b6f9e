"""The translation catalogue: every word a resident or officer reads, Vietnamese first."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

LOCALES: Final = Path(__file__).with_name("locales")
LANGUAGES: Final = ("vi", "en")
DEFAULT_LANGUAGE: Final = "vi"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat


class Catalogue:
    """Looks up texts by dotted key and language, falling back to Vietnamese."""

    def __init__(self, texts: Mapping[str, Mapping[str, str]]) -> None:
        self._texts = texts

    @classmethod
    def load(cls, folder: Path = LOCALES) -> Catalogue:
        """Read every ``<language>/<feature>.toml`` in the folder: one file per feature."""
        texts: dict[str, dict[str, str]] = {}
        for language in LANGUAGES:
            merged = texts.setdefault(language, {})
            for path in sorted((folder / language).glob("*.toml")):
                with path.open("rb") as handle:
                    table = _flatten(tomllib.load(handle))
                clash = merged.keys() & table.keys()
                if clash:
                    raise ValueError(f"{path}: keys defined twice: {sorted(clash)}")
                merged.update(table)
        return cls(texts)

    def keys(self, language: str) -> frozenset[str]:
        """Return every key a language defines."""
        return frozenset(self._texts[language])

    def text(self, language: str, key: str, **values: object) -> str:
        """Return the text for ``key`` in ``language``, with ``{name}`` fields filled in."""
        texts = self._texts.get(language) or self._texts[DEFAULT_LANGUAGE]
        template = texts.get(key) or self._texts[DEFAULT_LANGUAGE][key]
        return template.format(**values) if values else template


def normalise_language(code: str | None, default: str = DEFAULT_LANGUAGE) -> str:
    """Map a platform language code such as "en-US" to one of ours."""
    if code:
        short = code.split("-")[0].lower()
        if short in LANGUAGES:
            return short
    return default
