"""Writing files so that they are complete or absent, with the permissions the user's umask asks for.

Every output of the package (plans, summaries, preprocessed cases, checkpoints, predictions) goes through
:func:`publish`: the content is written to a hidden temporary file in the destination folder and renamed
onto the final name only when the write succeeded. A crash, a full disk or Ctrl-C therefore never leaves a
truncated file under a name that a later step would trust, and no temporary file stays behind.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from nnunet.errors import NnunetError

#: name of the hidden folder that holds files being written (one private sub-folder per writer)
PARTIAL_FOLDER = ".nnunet_partial"

_in_progress: set[Path] = set()  # private folders of this process's unfinished writes


class OutputError(NnunetError):
    """A file could not be written (full disk, read-only folder, missing permission)."""


def default_file_mode() -> int:
    """``0o666`` masked by the process umask: what ``open(path, 'w')`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def explain_os_error(error: OSError) -> str:
    """The error name, its explanation and what to do, e.g. ``ENOSPC (No space left on device). Free some...``."""
    code = errno.errorcode.get(error.errno, str(error.errno)) if error.errno is not None else "error"
    reason = error.strerror or str(error)
    hint = {errno.ENOSPC: " Free some space and run the command again.",
            errno.EDQUOT: " Free some space and run the command again.",
            errno.EROFS: " Choose a writable output folder.",
            errno.EACCES: " Check the permissions of this path (outputs need a folder you may write to).",
            errno.EPERM: " Check the permissions of this path."}.get(error.errno, "")
    return f"{code} ({reason}).{hint}"


#: free space below which a failed write is blamed on a full disk
FULL_DISK_BYTES = 1 << 20


def filesystem_is_full(folder: str | os.PathLike) -> bool:
    """Whether the filesystem of ``folder`` has (almost) no space left for this user."""
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < FULL_DISK_BYTES


def describe_os_error(error: OSError, path: str | os.PathLike) -> str:
    """One line naming the path, the error name and its explanation, e.g. ``ENOSPC (No space left...)``."""
    return f"Could not write {path}: {explain_os_error(error)}"


@contextlib.contextmanager
def publish(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path with the same file name as ``path``; move it onto ``path`` when the block succeeds.

    The temporary file lives in a private folder inside ``<folder>/.nnunet_partial/``, so writers that choose the
    format from the file ending (SimpleITK, nibabel) see the real ending. Side files a writer creates next to
    it are moved along before the main file, so the main file's presence means everything is complete.
    On any error the temporary files are removed; an ``OSError`` becomes :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    private = path.parent / PARTIAL_FOLDER / uuid.uuid4().hex
    _make_private_folder(private, path)
    tmp = private / path.name
    _in_progress.add(private)
    try:
        yield tmp
        mode = default_file_mode()
        for produced in private.iterdir():
            os.chmod(produced, mode)
        for side_file in private.iterdir():
            if side_file != tmp:
                os.replace(side_file, path.parent / side_file.name)
        os.replace(tmp, path)
    except OSError as e:
        raise OutputError(describe_os_error(e, path)) from None
    except Exception as e:
        # writers of other libraries (ITK, blosc2) report a full disk as their own exception types
        if not isinstance(e, NnunetError) and filesystem_is_full(private.parent):
            raise OutputError(describe_os_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path)) from None
        raise
    finally:
        _in_progress.discard(private)
        _remove_private_folder(private)


def _make_private_folder(private: Path, path: Path) -> None:
    attempts = 20
    for attempt in range(attempts):
        try:
            os.makedirs(private.parent, exist_ok=True)
            os.mkdir(private)
            return
        except (FileNotFoundError, FileExistsError) as e:
            # another writer that just finished removed the shared .nnunet_partial folder while we were creating
            # (or finding) it and our folder inside it: try again
            if attempt == attempts - 1:
                raise OutputError(describe_os_error(e, path)) from None
        except OSError as e:
            raise OutputError(describe_os_error(e, path)) from None


def _remove_private_folder(private: Path) -> None:
    shutil.rmtree(private, ignore_errors=True)
    with contextlib.suppress(OSError):
        private.parent.rmdir()  # succeeds only once no other writer uses it


def discard_partial_files() -> None:
    """Remove the temporary files of every unfinished :func:`publish` of this process (before it is ended)."""
    for private in list(_in_progress):
        _remove_private_folder(private)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(describe_os_error(e, path)) from None
    with publish(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def copy_file(source: str | os.PathLike, destination: str | os.PathLike) -> None:
    """Copy the content of ``source`` to ``destination`` (complete or absent; permissions from the umask, not
    from ``source``, which may be a read-only or private file)."""
    with publish(destination) as tmp:
        shutil.copyfile(source, tmp)
