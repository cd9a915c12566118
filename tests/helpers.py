"""Plain helpers shared by the whole suite. Tests import them from here, never from a conftest.py (which holds
only fixtures and the suite's settings)."""
from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
