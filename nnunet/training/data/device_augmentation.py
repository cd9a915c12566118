"""Augmentation on the training device: the workers only load and crop the enlarged windows, the training process
rotates, scales, alters intensities, mirrors and builds the targets per sample on the GPU.

Switched on by ``nnUNet_augment_on_device=1`` or a trainer's ``augment_on_device = True``; it needs the fused
pipeline (:func:`nnunet.training.augmentation.fused_training_transforms`). The stages are the same objects as on
the CPU, so the same drawn parameters give the same result; only the blur builds its kernel on the CPU in
batchgeneratorsv2, and is replaced by :class:`DeviceGaussianBlur`, which draws its parameters the same way.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from batchgeneratorsv2.transforms.noise.gaussian_blur import GaussianBlurTransform, _build_kernel
from batchgeneratorsv2.transforms.utils.random import RandomTransform
from torch.nn.functional import conv1d, pad

from nnunet.training.data.workers import finish_loader


def blur_axis(img: torch.Tensor, sigma: float, axis: int) -> torch.Tensor:
    """Gaussian blur of ``img`` (C, *spatial) along one spatial axis, reflect-padded, with the kernel on the
    image's device (batchgeneratorsv2's kernel: truncated at 6 sigma)."""
    kernel = _build_kernel(sigma, truncate=6).to(img.device, img.dtype)
    half = kernel.shape[0] // 2
    moved = img.movedim(axis + 1, -1)
    lines = moved.reshape(-1, 1, moved.shape[-1])
    # reflect padding needs 2-D or 3-D input: one line per row
    lines = pad(lines, (half, half), mode="reflect")
    out = conv1d(lines, kernel[None, None])
    return out.reshape(moved.shape).movedim(-1, axis + 1)


class DeviceGaussianBlur(GaussianBlurTransform):
    """batchgeneratorsv2's blur (same parameters, same draws) computed where the image is."""

    def _apply_to_image(self, img: torch.Tensor, **params) -> torch.Tensor:
        if len(params["apply_to_channel"]) == 0:
            return img
        channels = torch.nonzero(torch.as_tensor(params["apply_to_channel"])).flatten().tolist()
        for j, c in enumerate(channels):
            sigmas = params["sigmas"] if self.synchronize_channels else params["sigmas"][j]
            sub = img[c:c + 1]
            for axis, sigma in enumerate(sigmas):
                sub = blur_axis(sub, float(sigma), axis)
            img[c:c + 1] = sub
        return img


def for_device(stage: Any) -> Any:
    """The stage itself, or its device-safe replacement (the blur, also inside a RandomTransform)."""
    inner = stage.transform if isinstance(stage, RandomTransform) else stage
    if type(inner) is not GaussianBlurTransform:
        return stage
    replacement = DeviceGaussianBlur.__new__(DeviceGaussianBlur)
    replacement.__dict__.update(inner.__dict__)
    if inner is stage:
        return replacement
    wrapped = copy.copy(stage)
    wrapped.transform = replacement
    return wrapped


def device_pipeline(transforms):
    """A copy of a fused pipeline whose stages all run on any device."""
    pipeline = copy.copy(transforms)
    pipeline.transforms = [for_device(t) for t in transforms.transforms]
    return pipeline


def augment_batch(batch: dict, transforms, device: torch.device) -> dict:
    """Augment a batch of windows ``{"data": (B, C, *window), "target": (B, K, *window)}`` on ``device``, one
    sample after the other, exactly as the loader would have per sample: draw the geometry, cut its box, run the
    stages. Returns the batch the network trains on."""
    data = batch["data"].to(device, non_blocking=True)
    seg = batch["target"].to(device, non_blocking=True)
    window = tuple(data.shape[2:])
    images, targets = [], []
    with torch.no_grad():
        for j in range(data.shape[0]):
            draw = transforms.draw_spatial(window)
            box = (slice(None),) + tuple(slice(lo, hi) for lo, hi in draw.box)
            # contiguous copies: the stages work in place and the window batch is not theirs to change
            out = transforms(image=data[j][box].contiguous(), segmentation=seg[j][box].contiguous(), spatial=draw)
            images.append(out["image"])
            targets.append(out["segmentation"])
    target = ([torch.stack(level) for level in zip(*targets)] if isinstance(targets[0], list)
              else torch.stack(targets))
    return {**batch, "data": torch.stack(images), "target": target}


class DeviceAugmentedLoader:
    """Batches from ``loader`` (windows, not augmented), augmented on ``device`` as they are drawn."""

    def __init__(self, loader, transforms, device: torch.device):
        self.loader = loader
        self.transforms = device_pipeline(transforms)
        self.device = device

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        return augment_batch(next(self.loader), self.transforms, self.device)

    def _finish(self) -> None:
        finish_loader(self.loader)
