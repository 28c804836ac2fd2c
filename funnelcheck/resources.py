"""The JSON Schemas and the Lark grammar, found in the installed package or the source tree."""
from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """`schemas` or `grammar`: shipped inside the wheel, top-level in a checkout."""
    for candidate in (_HERE / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"funnelcheck is installed without its {name}/ folder")
