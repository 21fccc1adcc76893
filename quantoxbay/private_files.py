"""Files and directories only this account may read: DATA_DIR holds the database, the
uploaded products, outgoing mail and secrets.

Modes are set explicitly (``chmod``/``fchmod`` after creating), so they do not depend on the
process's umask: a umask of 000 would otherwise leave everything world-readable, and a
strict one could leave a file the app itself cannot read.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def make_dirs(path: Path) -> None:
    """``mkdir -p path``; every directory this creates is 0700. Existing ones are left alone."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process, which sets its own mode
        os.chmod(directory, DIR_MODE)


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents, 0700) and make ``path`` itself 0700 even if it existed."""
    make_dirs(path)
    try:
        os.chmod(path, DIR_MODE)
    except PermissionError:  # someone else's directory: leave it, but say so
        logger.warning("cannot make %s private (mode 0700): not its owner", path)
    return path


def open_private(path: str | os.PathLike[str], flags: int) -> int:
    """``os.open`` with ``O_CREAT``; the file ends up 0600 whether it was created or already there."""
    fd = os.open(path, flags | os.O_CREAT, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_file(path: Path) -> None:
    """Create ``path`` empty if missing (no content written), and make it 0600."""
    os.close(open_private(path, os.O_WRONLY))
