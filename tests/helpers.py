"""Plain helpers shared by the whole suite. Tests import them from here, never from a conftest.py (which holds
only fixtures and the suite's settings)."""
from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def register_classes(monkeypatch, registry, *classes) -> None:
    """Make ``classes`` findable by name in ``registry`` (``nnunet.registry.TRAINERS``, ...) until ``monkeypatch``
    is undone; the entries they hid come back then. The ``register`` fixture calls this; code that runs for
    longer than one test (a session fixture) passes a ``pytest.MonkeyPatch.context()`` of its own."""
    for cls in classes:
        monkeypatch.setitem(registry._entries, cls.__name__, cls)
