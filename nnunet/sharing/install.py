"""Install a model zip into ``nnUNet_results`` (``nnUNet_install_pretrained_model_from_zip``), or download one
first (``nnUNet_download_pretrained_model_by_url``).

The zip's paths are relative to ``nnUNet_results`` (as written by :func:`nnunet.sharing.export.export_pretrained_model`
and by nnU-Net). Before anything is written, every entry is checked: an absolute path, a drive letter, a ``..``
component, a backslash, a symbolic link or any path that would land outside ``nnUNet_results`` makes the whole zip
refused, with the offending entry named. Existing files are not overwritten unless asked: identical files are left
as they are, differing ones make the install stop before it starts. Each file is extracted to a temporary name next
to its target, and all are renamed into place only when the whole zip extracted cleanly.
"""
from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import re
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

from nnunet import paths
from nnunet.errors import NnunetError
from nnunet.utils.files import OutputError, describe_os_error, publish

logger = logging.getLogger(__name__)

_DRIVE = re.compile(r"^[A-Za-z]:")
#: seconds without data after which a download is abandoned (as nnU-Net)
DOWNLOAD_TIMEOUT = 100
_CHUNK = 8192 * 16


def unsafe_entry_reason(info: zipfile.ZipInfo) -> str | None:
    """Why ``info`` must not be extracted into a folder, or None if it is a plain relative path inside it."""
    name = info.filename
    if not name or "\x00" in name:
        return "an empty or NUL-containing name"
    if "\\" in name:
        return "a backslash in the path (Windows separators could escape the target folder)"
    if name.startswith("/") or _DRIVE.match(name):
        return "an absolute path"
    if ".." in name.split("/"):
        return "a '..' component (it would escape nnUNet_results)"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and stat.S_IFMT(mode):
        return "a special file (device, fifo or socket)"
    normalized = posixpath.normpath(name)
    if normalized in (".", "") or normalized.startswith("../"):
        return "a path that does not stay inside nnUNet_results"
    return None


def _target(root: Path, name: str) -> Path:
    """Where entry ``name`` lands; raises if, following existing links, it would leave its dataset folder.

    A link the user made for a whole dataset folder (``nnUNet_results/DatasetXXX -> /elsewhere``) is followed; any
    other link on the way that leads outside makes the entry unsafe.
    """
    normalized = posixpath.normpath(name)
    target = root / normalized
    parts = normalized.split("/")
    anchor = (root / parts[0]) if len(parts) > 1 else root
    resolved_anchor, resolved = anchor.resolve(), target.resolve()
    if resolved != resolved_anchor and resolved_anchor not in resolved.parents:
        raise NnunetError(f"entry {name!r} resolves to {resolved}, outside {anchor} (a link inside nnUNet_results "
                          f"points elsewhere).")
    return target


def _same_content(path: Path, info: zipfile.ZipInfo) -> bool:
    if not path.is_file() or path.stat().st_size != info.file_size:
        return False
    crc = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            crc = zlib.crc32(chunk, crc)
    return crc == info.CRC


def check_zip(zip_file: str | os.PathLike, root: Path) -> tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]:
    """Open ``zip_file`` and return it with its file entries; refuse it if any entry is unsafe."""
    zip_file = Path(zip_file)
    if not zip_file.is_file():
        raise NnunetError(f"Model zip {zip_file} does not exist.")
    if not zipfile.is_zipfile(zip_file):
        raise NnunetError(f"{zip_file} is not a zip file.")
    zf = zipfile.ZipFile(zip_file)
    try:
        bad = [(info.filename, reason) for info in zf.infolist() if (reason := unsafe_entry_reason(info))]
        if bad:
            listed = "; ".join(f"{n!r}: {r}" for n, r in bad[:10])
            more = f" (and {len(bad) - 10} more)" if len(bad) > 10 else ""
            raise NnunetError(f"Refusing to install {zip_file}: {len(bad)} unsafe entr{'y' if len(bad) == 1 else 'ies'}"
                              f" — {listed}{more}. Nothing was written.")
        for info in zf.infolist():
            try:
                _target(root, info.filename)
            except NnunetError as e:
                raise NnunetError(f"Refusing to install {zip_file}: {e} Nothing was written.") from None
        files = [info for info in zf.infolist() if not info.is_dir()]
        if not files:
            raise NnunetError(f"{zip_file} contains no files.")
    except BaseException:
        zf.close()
        raise
    return zf, files


def install_model_from_zip_file(zip_file: str | os.PathLike, overwrite: bool = False) -> list[str]:
    """Extract a model zip into ``nnUNet_results``.

    Args:
        zip_file: the zip (paths relative to ``nnUNet_results``).
        overwrite: replace existing files whose content differs (default: refuse before writing anything).

    Returns:
        The model folders (``DatasetXXX_Name/TRAINER__PLANS__CONFIG``) found in the zip.

    Raises:
        NnunetError: unsafe entries, differing existing files (without ``overwrite``), or a corrupt zip.
    """
    root = paths.results_root()
    zf, files = check_zip(zip_file, root)
    with zf:
        todo, unchanged, conflicts = [], 0, []
        for info in files:
            target = _target(root, info.filename)
            if target.exists() and not target.is_file():
                raise NnunetError(f"Cannot install {zip_file}: {target} exists and is not a file. Nothing was "
                                  f"written.")
            if target.is_file():
                if _same_content(target, info):
                    unchanged += 1
                    continue
                conflicts.append(target)
            todo.append(info)
        if conflicts and not overwrite:
            listed = ", ".join(str(c) for c in conflicts[:5]) + (f" and {len(conflicts) - 5} more"
                                                                 if len(conflicts) > 5 else "")
            raise NnunetError(f"Installing {zip_file} would overwrite {len(conflicts)} existing file(s) that differ "
                              f"from the zip: {listed}. Nothing was written. Move them away, or pass --overwrite "
                              f"to replace them.")
        _make_folder(root)
        _extract(zf, todo, root, zip_file)
    models = sorted({"/".join(Path(i.filename).parts[:2]) for i in files if len(Path(i.filename).parts) > 2})
    logger.info(f"Installed {len(todo)} file(s) into {root}" + (f" ({unchanged} already present)" if unchanged else "")
          + (": " + ", ".join(models) if models else "."))
    return models


def _missing_parents(folder: Path) -> list[Path]:
    """The folders that ``folder.mkdir(parents=True)`` would create, deepest first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    return missing


def _extract(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], root: Path, zip_file) -> None:
    """Extract every entry to a temporary file next to its target, check the checkpoints, then put them all in
    place.

    A corrupt member (CRC error, truncated data), a checkpoint that does not load as data (it would run code, or
    it is damaged) or a full disk stops the install before any target file is replaced; the temporary files and
    the folders created for them are removed again. Installed files get the permissions of the umask.
    """
    from tqdm import tqdm

    created: list[Path] = []
    try:
        with contextlib.ExitStack() as staging:
            staged = []
            for info in tqdm(infos, desc="Extracting", unit="file", disable=len(infos) < 20):
                target = _target(root, info.filename)
                created.extend(_missing_parents(target.parent))
                _make_folder(target.parent)
                tmp = staging.enter_context(publish(target))  # renamed into place when the block ends cleanly
                _copy_member(zf, info, tmp, zip_file)
                staged.append((tmp, info.filename))
            _check_checkpoints(staged, zip_file)
    except OutputError as e:
        _remove_folders(created)
        raise OutputError(f"{e} Nothing was installed.") from None
    except BaseException:
        _remove_folders(created)
        raise


def _remove_folders(created: list[Path]) -> None:
    for folder in sorted(set(created), key=lambda p: len(p.parts), reverse=True):
        try:
            folder.rmdir()
        except OSError:
            pass


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(describe_os_error(e, folder)) from None


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, tmp: Path, zip_file) -> None:
    try:
        with zf.open(info) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise NnunetError(f"{zip_file} is corrupt ({info.filename}: {e}). Nothing was installed.") from None


def _check_checkpoints(staged: list[tuple[Path, str]], zip_file) -> None:
    """Every ``.pth`` of the zip must load as data (see :func:`nnunet.training.checkpoint.load_checkpoint_file`)."""
    from nnunet.networks.checkpoint_files import verify_checkpoint_file

    for tmp, name in staged:
        if name.endswith(".pth"):
            try:
                verify_checkpoint_file(tmp)
            except NnunetError as e:
                reason = str(e).replace(str(tmp), name)
                raise type(e)(f"Refusing to install {zip_file}: {reason} Nothing was installed.") from None


def download_file(url: str, local_file: Path, show_progress: bool = True) -> Path:
    """Stream ``url`` into ``local_file`` with a progress bar; raises NnunetError on any failure."""
    from tqdm import tqdm

    try:
        response = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT)
    except (urllib.error.URLError, ValueError, OSError) as e:
        raise NnunetError(f"Cannot download {url}: {getattr(e, 'reason', e)}") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        try:
            with open(local_file, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                                   desc="Downloading", disable=not show_progress) as bar:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (urllib.error.URLError, OSError) as e:
            raise NnunetError(f"Download of {url} failed after {received} bytes: {e}") from None
    if total is not None and received != total:
        raise NnunetError(f"Download of {url} is incomplete: {received} of {total} bytes.")
    return local_file


def _temporary_download_file() -> Path:
    """``~/.nnunetdownload_{random}`` as nnU-Net; the system temp folder if the home folder is not writable."""
    for folder in (Path.home(), Path(tempfile.gettempdir())):
        try:
            fd, name = tempfile.mkstemp(prefix=f".nnunetdownload_{int(time.time() * 1e7)}_", dir=folder)
        except OSError:
            continue
        os.close(fd)
        return Path(name)
    raise NnunetError("Cannot create a temporary file for the download (home and temp folders not writable).")


def download_and_install_from_url(url: str, overwrite: bool = False, show_progress: bool = True) -> list[str]:
    """Download a model zip from ``url`` (http(s), ftp or file) and install it; the download is always deleted."""
    paths.results_root()  # fail before downloading when nnUNet_results is not set
    logger.info("Downloading pretrained model from %s", url)
    local = _temporary_download_file()
    try:
        download_file(url, local, show_progress)
        logger.info("Download finished; installing.")
        return install_model_from_zip_file(local, overwrite=overwrite)
    finally:
        local.unlink(missing_ok=True)
