"""NIfTI through nibabel: ``NibabelIO`` and ``NibabelIOWithReorient`` (3-D images only).

Arrays are transposed (2, 1, 0) and the zooms reversed, so that axis order and spacing match what
SimpleITK-based readers return for the same file.
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Sequence

import numpy as np

from nnunet.errors import DatasetError
from nnunet.io.readers.base import BaseReaderWriter, check_channels_agree
from nnunet.registry import READERS


def _nib():
    """nibabel, imported on first use: it takes most of a second to import, and most datasets never need it."""
    import nibabel

    return nibabel


def _load_nifti(path: str | os.PathLike):
    try:
        return _nib().load(str(path))
    except Exception as e:  # nibabel raises ImageFileError, OSError, EOFError, zlib errors, ...
        raise DatasetError(f"Could not read {path}: {type(e).__name__}: {e}") from None


def _voxels(img, path: str | os.PathLike) -> np.ndarray:
    try:
        arr = np.asanyarray(img.dataobj)
    except Exception as e:  # a truncated file fails only when the data are read
        raise DatasetError(f"Could not read the voxel data of {path}: {type(e).__name__}: {e}") from None
    if arr.ndim != 3:
        raise DatasetError(f"{path}: NibabelIO reads 3-D images only, this file has shape {arr.shape}. "
                           f"Use SimpleITKIO (file ending .nii.gz) for 2-D or multi-channel (4-D) files.")
    return arr


def _check_channels(files, arrays, spacings, affines) -> None:
    check_channels_agree(files, [a.shape for a in arrays], spacings)
    if any(not np.allclose(a, affines[0]) for a in affines):
        warnings.warn(f"The channel files {[str(f) for f in files]} have different affines.", stacklevel=3)


@READERS.register
class NibabelIO(BaseReaderWriter):
    """3-D NIfTI through nibabel; keeps the affine in ``properties["nibabel_stuff"]["original_affine"]``."""

    supported_file_endings = (".nii", ".nii.gz")

    def _load(self, path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], dict[str, Any]]:
        """Voxels (file axis order), affine, zooms and the ``nibabel_stuff`` entries of one file."""
        img = _load_nifti(path)
        return _voxels(img, path), img.affine, img.header.get_zooms()[:3], {"original_affine": img.affine}

    def read_images(self, image_files: Sequence[str | os.PathLike]) -> tuple[np.ndarray, dict[str, Any]]:
        if not image_files:
            raise DatasetError("No image files given.")
        arrays, spacings, affines, stuffs = [], [], [], []
        for f in image_files:
            arr, affine, zooms, stuff = self._load(f)
            arrays.append(arr.transpose(2, 1, 0)[None])
            spacings.append([float(z) for z in zooms][::-1])
            affines.append(affine)
            stuffs.append(stuff)
        _check_channels(image_files, [a[0] for a in arrays], spacings, affines)
        data = np.vstack(arrays).astype(np.float32, copy=False)
        return data, {"nibabel_stuff": stuffs[0], "spacing": spacings[0]}

    def read_seg(self, seg_file: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
        return self.read_images([seg_file])

    def _seg_nifti(self, seg: np.ndarray, properties: dict[str, Any]):
        voxels = seg.transpose(2, 1, 0).astype(self.seg_dtype(seg), copy=False)
        return _nib().Nifti1Image(voxels, affine=properties["nibabel_stuff"]["original_affine"])

    def write_seg(self, seg: np.ndarray, output_file: str | os.PathLike, properties: dict[str, Any]) -> None:
        _nib().save(self._seg_nifti(seg, properties), str(output_file))


@READERS.register
class NibabelIOWithReorient(NibabelIO):
    """Like :class:`NibabelIO`, but images are first reoriented to the closest canonical (RAS) orientation.

    The writer rotates the segmentation back to the original orientation and warns if the restored affine
    differs from the original one.
    """

    def _load(self, path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, tuple[float, ...], dict[str, Any]]:
        img = _load_nifti(path)
        try:
            reoriented = img.as_reoriented(_nib().orientations.io_orientation(img.affine))
        except Exception as e:
            raise DatasetError(f"Could not reorient {path}: {type(e).__name__}: {e}") from None
        stuff = {"original_affine": img.affine, "reoriented_affine": reoriented.affine}
        return _voxels(reoriented, path), reoriented.affine, reoriented.header.get_zooms()[:3], stuff

    def _seg_nifti(self, seg: np.ndarray, properties: dict[str, Any]):
        stuff = properties["nibabel_stuff"]
        voxels = seg.transpose(2, 1, 0).astype(self.seg_dtype(seg), copy=False)
        img = _nib().Nifti1Image(voxels, affine=stuff["reoriented_affine"])
        orientations = _nib().orientations
        back = orientations.ornt_transform(orientations.io_orientation(stuff["reoriented_affine"]),
                                           orientations.io_orientation(stuff["original_affine"]))
        restored = img.as_reoriented(back)
        if not np.allclose(restored.affine, stuff["original_affine"]):
            warnings.warn(f"The affine restored for the segmentation differs from the original one:\n"
                          f"{restored.affine}\nvs\n{stuff['original_affine']}", stacklevel=3)
        return restored
