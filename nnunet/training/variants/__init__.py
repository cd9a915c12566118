"""Trainer variants shipped with the package (each registered in :data:`nnunet.registry.TRAINERS`)."""
from nnunet.training.variants import benchmark, demo, sampling, training_length, variants  # noqa: F401 - registration
