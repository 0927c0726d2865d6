"""Re-export of mx_training_toolkit.training_utils (the same functions)."""
from mx_training_toolkit.training_utils import save, scheduler_host  # noqa: F401
__all__ = ["save", "scheduler_host"]
