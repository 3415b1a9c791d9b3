"""Errors that the CLI turns into one short line and a documented exit code."""


class UserError(Exception):
    """Something the user can fix; the message says what to do. Exit code 2 (nothing done)."""


class WarehouseBusy(UserError):
    """The warehouse DuckDB file is held open by another process."""
