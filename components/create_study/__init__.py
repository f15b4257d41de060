"""The create_study stage."""

from components.create_study.component import create_study

__all__ = ["create_study"]
