"""Files a training writes next to its checkpoints: the copied plans, dataset.json and fingerprint, debug.json,
the architecture drawing, and the plans summary at the top of the log."""
from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any, Callable

import torch

from nnunet.utils.files import atomic_write_bytes
from nnunet.utils.json import save_json

CITATION = ("\n#######################################################################\n"
            "This is a reimplementation of nnU-Net. If you use it, please cite the nnU-Net paper:\n"
            "Isensee, F., Jaeger, P. F., Kohl, S. A., Petersen, J., & Maier-Hein, K. H. (2021). nnU-Net: a "
            "self-configuring method for deep learning-based biomedical image segmentation. Nature Methods, "
            "18(2), 203-211.\n"
            "#######################################################################\n")


def log_plans(log: Callable[..., None], configuration_name: str, configuration: dict, plans: dict) -> None:
    """The citation, the configuration and the global plans settings, at the top of the training log."""
    log(CITATION, add_timestamp=False)
    log(f"\nThis is the configuration used by this training:\nConfiguration name: {configuration_name}\n",
        configuration, "\n", add_timestamp=False)
    global_settings = {k: v for k, v in plans.items() if k != "configurations"}
    log("These are the global plan.json settings:\n", global_settings, "\n", add_timestamp=False)


def copy_plans_and_dataset_json(output_folder_base: Path, plans: dict, dataset_json: dict,
                                fingerprint: Path) -> None:
    """plans.json, dataset.json (the in-memory ones) and dataset_fingerprint.json into the model folder."""
    save_json(plans, output_folder_base / "plans.json", sort_keys=False)
    save_json(dataset_json, output_folder_base / "dataset.json", sort_keys=False)
    if fingerprint.is_file():
        atomic_write_bytes(output_folder_base / "dataset_fingerprint.json", fingerprint.read_bytes())


def write_debug_json(path: Path, attributes: dict[str, Any], device: torch.device) -> None:
    """debug.json: the trainer's attributes as strings plus host, library versions and device."""
    dct = {k: str(v) for k, v in attributes.items()}
    dct.update({"hostname": socket.getfqdn(), "torch_version": torch.__version__,
                "cudnn_version": str(torch.backends.cudnn.version()), "python_version": sys.version,
                "device": str(device)})
    if device.type == "cuda":
        dct["gpu_name"] = torch.cuda.get_device_name()
    atomic_write_bytes(path, json.dumps(dct, sort_keys=True, indent=4).encode())


def plot_network_architecture(network: torch.nn.Module, input_shape: tuple[int, ...], device: torch.device,
                              path: Path, log: Callable[..., None]) -> None:
    """network_architecture.pdf through the optional ``hiddenlayer`` package, as nnU-Net does; without it (or when
    it fails) one line in the log says why and training goes on."""
    try:
        import hiddenlayer

        graph = hiddenlayer.build_graph(network, torch.rand(input_shape, device=device), transforms=None)
        graph.save(str(path))
    except Exception as e:  # noqa: BLE001 - a plot must never stop a training
        log(f"Unable to plot network architecture: {type(e).__name__}: {e}")
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
