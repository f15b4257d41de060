"""The notify stage."""

from components.notify.component import notify

__all__ = ["notify"]
