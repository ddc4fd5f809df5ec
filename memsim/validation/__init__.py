"""Validation against real hardware: measured data (``memsim.validation.data``) and, later, the
comparison of predictions with it."""
