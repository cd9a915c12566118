"""The compat tests train on the reliability suite's tiny dataset (made once per session)."""
from tests.reliability.tiny_dataset import tiny_dirs, tiny_preprocessed  # noqa: F401 - fixtures used by name
