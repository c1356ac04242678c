"""Where the app keeps what it remembers between runs: window layout, recent files, last folders.

Everything goes through ``settings()``, an INI-format ``QSettings`` in the user scope. Tests isolate
it with ``QSettings.setPath(IniFormat, UserScope, tmp_path)``.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

ORG = "GPTExplorer"
APP = "GPT Explorer"
MAX_RECENT = 8


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def recent_files() -> list[str]:
    """Recently opened checkpoints that still exist, newest first."""
    return [p for p in _as_list(settings().value("recent/files")) if Path(p).is_file()]


def add_recent_file(path: str) -> list[str]:
    path = str(Path(path).resolve())
    files = [path] + [p for p in recent_files() if p != path]
    files = files[:MAX_RECENT]
    s = settings()
    s.setValue("recent/files", files)
    s.sync()
    return files


def clear_recent_files() -> None:
    s = settings()
    s.remove("recent/files")
    s.sync()


def last_dir(key: str, default: str = "") -> str:
    value = settings().value(f"dirs/{key}")
    return str(value) if value and Path(str(value)).is_dir() else (default or str(Path.home()))


def set_last_dir(key: str, path: str) -> None:
    p = Path(path)
    s = settings()
    s.setValue(f"dirs/{key}", str(p if p.is_dir() else p.parent))
