"""diffv2m.plugin: the OpenTimelineIO bridge and the PySide6 panel (torch-free)."""
