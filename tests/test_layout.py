"""The shape the code promises: a chat-neutral core, no forwarding, a complete catalogue."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Final

import pytest

from handlers.i18n import LANGUAGES, Catalogue
from handlers.tips import EDITABLE, Step
from storage.models import Category, TipStatus

ROOT = Path(__file__).resolve().parents[1]
CODE = [p for d in ("bot", "handlers", "storage", "broadcasts") for p in (ROOT / d).rglob("*.py")]
NEUTRAL = [
    p for p in CODE if p.is_relative_to(ROOT / "handlers") or p.is_relative_to(ROOT / "broadcasts")
]
KEY_CALL = re.compile(r"""\bt\(\s*"([a-z_]+\.[a-z_.]+)"|text\([^,]+,\s*"([a-z_]+\.[a-z_.]+)\"""")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def imported_names(path: Path) -> set[str]:
    """Return every module a file imports, by full name; ``from a import b`` gives a.b too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


# Layers point down: bot/ → broadcasts/ → handlers/ → storage/.
BELOW: Final = {
    "bot": {"broadcasts", "handlers", "storage"},
    "broadcasts": {"handlers", "storage"},
    "handlers": {"storage"},
    "storage": set(),
}
# What the dispatcher may use: the turn, the events, the router, text and language helpers,
# the settings and the middleware hooks. Every feature is handed to it by bot/app.py.
DISPATCH_CORE: Final = {
    "handlers.context",
    "handlers.events",
    "handlers.i18n",
    "handlers.middleware",
    "handlers.router",
    "handlers.settings",
    "handlers.text",
}


def test_the_import_reader_sees_imports() -> None:
    assert {"handlers.menu", "handlers.context.Turn", "storage"} <= imported_names(
        ROOT / "handlers" / "tips.py"
    )
    assert "broadcasts.engine" in imported_names(ROOT / "bot" / "app.py")


def test_layers_point_down() -> None:
    wrong = sorted(
        f"{path.relative_to(ROOT)} imports {name}"
        for layer, allowed in BELOW.items()
        for path in (ROOT / layer).rglob("*.py")
        for name in imported_names(path)
        if name.split(".")[0] in BELOW and name.split(".")[0] not in allowed | {layer}
    )
    assert wrong == []


def test_the_dispatcher_knows_no_feature() -> None:
    for module in ("dispatch", "middleware"):
        path = ROOT / "handlers" / f"{module}.py"
        ours = {n for n in imported_names(path) if n.split(".")[0] in BELOW}
        modules = {".".join(n.split(".")[:2]) for n in ours if n.startswith("handlers.")}
        assert modules <= DISPATCH_CORE, f"{module}.py imports {modules - DISPATCH_CORE}"


@pytest.mark.parametrize("path", NEUTRAL, ids=lambda p: str(p.relative_to(ROOT)))
def test_handlers_never_import_telegram(path: Path) -> None:
    assert "telegram" not in imported_modules(path)


def test_only_the_adapter_and_the_app_import_telegram() -> None:
    importing = {
        str(p.relative_to(ROOT))
        for p in CODE
        if "telegram" in imported_modules(p) and not p.is_relative_to(ROOT / "bot" / "emulator")
    }
    assert importing == {"bot/channels/telegram.py", "bot/app.py"}


def test_nothing_outside_the_emulator_forwards_messages() -> None:
    forwarding = re.compile(r"forward_message|forwardMessage|forward_messages")
    offenders = [
        str(p.relative_to(ROOT))
        for p in CODE
        if not p.is_relative_to(ROOT / "bot" / "emulator") and forwarding.search(p.read_text())
    ]
    assert offenders == []


def test_every_language_has_the_same_keys() -> None:
    catalogue = Catalogue.load()
    vi, en = (catalogue.keys(language) for language in LANGUAGES)
    assert vi - en == set() and en - vi == set()


def test_every_key_the_code_names_exists() -> None:
    keys = Catalogue.load().keys("vi")
    named = {
        match.group(1) or match.group(2)
        for path in NEUTRAL
        for match in KEY_CALL.finditer(path.read_text(encoding="utf-8"))
    }
    assert len(named) > 50  # the pattern really finds the calls
    built = (
        {f"category.{c.value}" for c in Category}
        | {f"status.{s.value}" for s in TipStatus}
        | {f"tip.ask_{s.name.lower()}" for s in Step if s not in (Step.REVIEW, Step.RESUME)}
        | {f"tip.edit_{s.value}" for s in EDITABLE}
    )
    assert (named | built) - keys == set()


def test_vietnamese_texts_carry_their_diacritics() -> None:
    vi = Catalogue.load()
    # Words residents read constantly, which lose their meaning without their marks.
    for key, word in {
        "menu.tip": "Gửi tin tố giác",
        "menu.lookup": "Tra cứu",
        "menu.hotlines": "Đường dây nóng",
        "menu.privacy": "Quyền riêng tư",
        "tip.cancel": "Hủy",
        "category.dealing": "Mua bán ma túy",
    }.items():
        assert word in vi.text("vi", key)
