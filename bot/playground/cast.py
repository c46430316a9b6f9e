"""The demo people of the playground: a few residents, and each ward's officers in its group."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bot.config import Settings
from bot.emulator import BotApiEmulator

# Invented people; their ids sit far from any real Telegram id an operator might configure.
RESIDENTS: Final = (
    (900000001, "Cô Lan"),
    (900000002, "Bác Hùng"),
    (900000003, "Em Vy"),
)
_OFFICER_NAMES: Final = ("Trần Minh", "Phạm Hải", "Đỗ Thảo", "Vũ Quân", "Hoàng Linh")
_SUPERVISOR_NAMES: Final = ("Lê Dũng", "Ngô Bình", "Bùi Sơn")


@dataclass(frozen=True)
class DemoPerson:
    """Someone the page lets you be."""

    id: int
    name: str
    role: str  # "resident", "officer" or "supervisor"


@dataclass(frozen=True)
class DemoGroup:
    """A ward's officers' group with the officers and supervisors config.toml lists."""

    id: int
    ward: str
    title: str
    members: tuple[DemoPerson, ...]


@dataclass(frozen=True)
class Cast:
    """Everyone in the playground."""

    residents: tuple[DemoPerson, ...]
    groups: tuple[DemoGroup, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> Cast:
        """Demo residents, plus each ward's configured officers under invented names."""
        residents = tuple(DemoPerson(uid, name, "resident") for uid, name in RESIDENTS)
        groups = []
        for ward in settings.wards:
            members = [
                DemoPerson(uid, f"Cán bộ {_OFFICER_NAMES[n % len(_OFFICER_NAMES)]}", "officer")
                for n, uid in enumerate(dict.fromkeys(ward.officers))
                if uid not in ward.supervisors
            ]
            members += [
                DemoPerson(
                    uid, f"Chỉ huy {_SUPERVISOR_NAMES[n % len(_SUPERVISOR_NAMES)]}", "supervisor"
                )
                for n, uid in enumerate(dict.fromkeys(ward.supervisors))
            ]
            title = f"Công an {ward.name}"
            groups.append(DemoGroup(ward.officer_chat_id, ward.code, title, tuple(members)))
        return cls(residents, tuple(groups))

    def populate(self, emulator: BotApiEmulator) -> None:
        """Create the users and groups in the emulator, as if each had started the bot."""
        for person in self.residents:
            emulator.add_user(person.id, person.name, language_code="vi")
        for group in self.groups:
            emulator.add_group(group.id, group.title)
            for member in group.members:
                if member.id not in emulator.world.users:
                    emulator.add_user(member.id, member.name, language_code="vi")

    def person(self, user_id: int) -> DemoPerson | None:
        """The demo person with this id, if there is one."""
        for person in self.residents:
            if person.id == user_id:
                return person
        for group in self.groups:
            for member in group.members:
                if member.id == user_id:
                    return member
        return None

    def may_write(self, user_id: int, chat_id: int) -> bool:
        """Residents write in their own chat with the bot; officers in their ward's group."""
        if any(person.id == user_id == chat_id for person in self.residents):
            return True
        return any(
            group.id == chat_id and any(m.id == user_id for m in group.members)
            for group in self.groups
        )
