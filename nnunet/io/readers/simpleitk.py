"""SimpleITK-based readers/writers: ``SimpleITKIO`` (.nii.gz, .nrrd, .mha, .gipl) and its RAS-reorienting twin."""
from __future__ import annotations

import errno
import gzip
import os
import struct
import warnings
from typing import Any, Sequence

import numpy as np
import SimpleITK as sitk

from nnunet.errors import DatasetError
from nnunet.io.naming import displayable, is_utf8
from nnunet.io.readers.base import BaseReaderWriter, check_channels_agree
from nnunet.registry import READERS
from nnunet.utils.files import filesystem_is_full

#: fake spacing factor of the singleton axis of 2-D files read by SimpleITK (times the largest in-plane spacing)
SPACING_2D_FACTOR = 999


def itk_path(path: str | os.PathLike) -> str:
    """``path`` as ITK accepts it. ITK aborts the whole process (no exception) on a name that is not UTF-8."""
    if not is_utf8(path):
        raise DatasetError(f"{displayable(path)}: the file name is not valid UTF-8, which SimpleITK cannot handle. "
                           f"Rename the file.")
    return str(path)


def _read_one(path: str | os.PathLike) -> sitk.Image:
    try:
        img = sitk.ReadImage(itk_path(path))
    except RuntimeError as e:
        lines = str(e).strip().splitlines()
        raise DatasetError(f"Could not read {path}: {lines[-1] if lines else 'unreadable file'}") from None
    problem = nifti_truncation(path)
    if problem:
        raise DatasetError(f"Could not read {path}: {problem}")
    return img


def _gunzipped_size(path: str | os.PathLike) -> int:
    size = 0
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            size += len(chunk)
    return size


def _nifti1_expected_bytes(header: bytes) -> int | None:
    """Bytes a NIfTI-1 file must hold (voxel offset + voxel data) according to its 348-byte header, or None when
    the header is not a plain NIfTI-1 header (NIfTI-2, Analyze oddities: left to the reader)."""
    if len(header) < 348:
        return None
    for endian in "<>":
        if struct.unpack(endian + "i", header[:4])[0] == 348:
            break
    else:
        return None
    dims = struct.unpack(endian + "8h", header[40:56])
    bitpix = struct.unpack(endian + "h", header[72:74])[0]
    vox_offset = struct.unpack(endian + "f", header[108:112])[0]
    ndim = dims[0]
    if not 1 <= ndim <= 7 or any(d <= 0 for d in dims[1:ndim + 1]) or bitpix <= 0 or bitpix % 8:
        return None
    return int(vox_offset) + int(np.prod(dims[1:ndim + 1], dtype=np.int64)) * (bitpix // 8)


def nifti_truncation(path: str | os.PathLike) -> str | None:
    """Why a .nii/.nii.gz file holds fewer voxel bytes than its header announces, or None.

    SimpleITK fills the missing part of a truncated NIfTI with arbitrary values instead of failing. The check is
    cheap for intact files: the header is parsed directly (a few hundred bytes) and the gzip trailer stores the
    uncompressed size, so only a mismatch (a truncated or multi-member stream) costs a full decompression.
    """
    name = str(path).lower()
    if not name.endswith((".nii", ".nii.gz")):
        return None
    try:
        with (gzip.open(path, "rb") if name.endswith(".gz") else open(path, "rb")) as f:
            expected = _nifti1_expected_bytes(f.read(348))
    except (EOFError, OSError, gzip.BadGzipFile) as e:
        return f"the compressed data are truncated or corrupt ({type(e).__name__}: {e})"
    if expected is None:
        return None
    if name.endswith(".nii"):
        actual = os.path.getsize(path)
    else:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            if struct.unpack("<I", f.read(4))[0] == expected % 2**32:
                return None
        try:
            actual = _gunzipped_size(path)
        except (EOFError, OSError, gzip.BadGzipFile) as e:
            return f"the compressed data are truncated or corrupt ({type(e).__name__}: {e})"
    if actual < expected:
        return f"the file is truncated: the header announces {expected} bytes, the file holds {actual}"
    return None


#: errors of the machine that ITK reports only inside its exception text
_SYSTEM_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)


def write_image(img: sitk.Image, output_file: str | os.PathLike) -> None:
    """``sitk.WriteImage`` (compressed) that fails when the file is not complete.

    ITK's NIfTI writer ignores failed writes: on a full disk it reports success and leaves a truncated or empty
    file. Written NIfTI files are therefore checked against their header (cheap: see :func:`nifti_truncation`);
    a shortfall, or an ITK error caused by the machine, becomes an ``OSError`` with the matching errno, which
    :func:`nnunet.utils.files.publish` reports as one line naming the file.
    """
    try:
        sitk.WriteImage(img, itk_path(output_file), True)
    except RuntimeError as e:
        for code in _SYSTEM_ERRNOS:
            if os.strerror(code) in str(e):
                raise OSError(code, os.strerror(code), str(output_file)) from None
        raise
    problem = nifti_truncation(output_file)
    if not problem and os.path.getsize(output_file) == 0:  # ITK's answer to a disk with no block left
        problem = "the file is empty"
    if problem:
        if filesystem_is_full(os.path.dirname(os.path.abspath(output_file))):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(output_file))
        raise OSError(errno.EIO, f"written incompletely, {problem}", str(output_file))


def _as_case_array(arr: np.ndarray, spacing: Sequence[float], path) -> tuple[np.ndarray, list[float]]:
    """Add the channel (and for 2-D the singleton) axis; spacing in array-axis order, absolute values."""
    if arr.ndim == 2:
        arr = arr[None, None]
        sp = [SPACING_2D_FACTOR * max(spacing)] + list(spacing)[::-1]
    elif arr.ndim == 3:
        arr = arr[None]
        sp = list(spacing)[::-1]
    elif arr.ndim == 4:
        # several channels in one file: SimpleITK puts them on the first array axis
        sp = list(spacing)[::-1][1:]
    else:
        raise DatasetError(f"{path}: images must be 2-D, 3-D or 4-D, got {arr.ndim} dimensions.")
    return arr, [abs(float(s)) for s in sp]


def _check_consistency(files, arrays, spacings, origins, directions) -> None:
    check_channels_agree(files, [a.shape[1:] for a in arrays], spacings)
    if any(len(o) != len(origins[0]) or not np.allclose(o, origins[0]) for o in origins):
        warnings.warn(f"The channel files {[str(f) for f in files]} have different origins.", stacklevel=3)
    if any(len(d) != len(directions[0]) or not np.allclose(d, directions[0]) for d in directions):
        warnings.warn(f"The channel files {[str(f) for f in files]} have different directions.", stacklevel=3)


def seg_image(seg: np.ndarray, stuff: dict[str, Any], dtype: type) -> sitk.Image:
    """A SimpleITK image of ``seg`` with the stored geometry, reduced to the dimension of ``seg``.

    2-D data arrive as ``(1, X, Y)`` and lose the singleton axis; geometry read from a 4-D (multi-channel)
    file is cut down to its three spatial axes.
    """
    if len(stuff["spacing"]) == 2:
        seg = seg[0]
    dim = seg.ndim
    img = sitk.GetImageFromArray(seg.astype(dtype, copy=False))
    full_dim = len(stuff["spacing"])
    img.SetSpacing([float(s) for s in stuff["spacing"][:dim]])
    img.SetOrigin([float(o) for o in stuff["origin"][:dim]])
    direction = np.asarray(stuff["direction"], dtype=float).reshape(full_dim, full_dim)[:dim, :dim]
    img.SetDirection(direction.ravel().tolist())
    return img


@READERS.register
class SimpleITKIO(BaseReaderWriter):
    """Medical volumes through SimpleITK; keeps spacing, origin and direction in ``properties["sitk_stuff"]``."""

    supported_file_endings = (".nii.gz", ".nrrd", ".mha", ".gipl")

    def _load(self, path: str | os.PathLike) -> tuple[sitk.Image, dict[str, Any]]:
        """Read one file; the dict holds extra entries for ``sitk_stuff`` (none here)."""
        return _read_one(path), {}

    def read_images(self, image_files: Sequence[str | os.PathLike]) -> tuple[np.ndarray, dict[str, Any]]:
        if not image_files:
            raise DatasetError("No image files given.")
        arrays, spacings, images, extras = [], [], [], []
        for f in image_files:
            img, extra = self._load(f)
            arr, spacing = _as_case_array(sitk.GetArrayFromImage(img), img.GetSpacing(), f)
            arrays.append(arr)
            spacings.append(spacing)
            images.append(img)
            extras.append(extra)
        _check_consistency(image_files, arrays, spacings, [i.GetOrigin() for i in images],
                           [i.GetDirection() for i in images])
        data = arrays[0] if len(arrays) == 1 else np.vstack(arrays)
        first = images[0]
        stuff = {"spacing": first.GetSpacing(), "origin": first.GetOrigin(), "direction": first.GetDirection(),
                 **extras[0]}
        return data.astype(np.float32, copy=False), {"sitk_stuff": stuff, "spacing": spacings[0]}

    def read_seg(self, seg_file: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
        return self.read_images([seg_file])

    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: dict[str, Any]) -> None:
        img = seg_image(seg, properties["sitk_stuff"], self.seg_dtype(seg))
        write_image(img, output_file)


@READERS.register
class SimpleITKIOWithReorient(SimpleITKIO):
    """Like :class:`SimpleITKIO`, but 3-D images are reoriented to RAS on read and back on write.

    Not chosen automatically; name it in ``overwrite_image_reader_writer``. The original orientation code is
    stored as ``properties["sitk_stuff"]["original_orientation"]``.
    """

    target_orientation = "RAS"

    def _load(self, path: str | os.PathLike) -> tuple[sitk.Image, dict[str, Any]]:
        img = _read_one(path)
        if img.GetDimension() != 3:  # orientation codes exist for 3-D only; 2-D/4-D files pass unchanged
            return img, {"original_orientation": None}
        original = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(img.GetDirection())
        return sitk.DICOMOrient(img, self.target_orientation), {"original_orientation": original}

    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: dict[str, Any]) -> None:
        stuff = properties["sitk_stuff"]
        img = seg_image(seg, stuff, self.seg_dtype(seg))
        if stuff.get("original_orientation") and img.GetDimension() == 3:
            img = sitk.DICOMOrient(img, stuff["original_orientation"])
        write_image(img, output_file)
