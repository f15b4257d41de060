"""The validate stage: `validate` (task, schema, roles) and `check_quality` (anomalies, drift,
the policy)."""

from components.validate.component import check_quality, validate

__all__ = ["check_quality", "validate"]
