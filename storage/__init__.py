"""Persistence: SQLModel tables, repositories, migrations and the keyring."""
