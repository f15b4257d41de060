"""The load_rows stage."""

from components.load_rows.component import load_rows

__all__ = ["load_rows"]
