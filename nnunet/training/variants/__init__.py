"""Trainer variants shipped with the package (each registered in :data:`nnunet.registry.TRAINERS`), grouped as
in nnU-Net 2.8.1, plus ``nnUNetTrainerDemo`` and ``nnUNetTrainerCPUTrial``."""
from nnunet.training.variants import (benchmark, competitions, data_augmentation, demo, loss,  # noqa: F401
                                      network_architecture, optimizer, primus, sampling, training_length)
