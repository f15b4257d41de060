"""The collect stage."""

from components.collect.component import collect

__all__ = ["collect"]
