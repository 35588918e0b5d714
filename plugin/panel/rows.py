"""Rows of widgets, the panel's one way to lay out a line of buttons and labels.

``row_layout(a, b, STRETCH, c)`` is a ``QHBoxLayout`` holding ``a`` and ``b`` on the left and
``c`` pushed to the right; an item ``(widget, n)`` takes stretch factor ``n``.  ``button`` makes a
``QPushButton`` with its tooltip and click handler in one call.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget


class _Stretch:
    def __repr__(self) -> str:
        return "STRETCH"


STRETCH = _Stretch()          # an empty stretch (factor 1) between the items of a row


def row_layout(*items: QWidget | tuple[QWidget, int] | _Stretch,
               margins: bool = True) -> QHBoxLayout:
    """A ``QHBoxLayout`` of ``items`` in order (``margins=False``: no content margins)."""
    lay = QHBoxLayout()
    if not margins:
        lay.setContentsMargins(0, 0, 0, 0)
    for item in items:
        if item is STRETCH:
            lay.addStretch(1)
        elif isinstance(item, tuple):
            lay.addWidget(*item)
        else:
            lay.addWidget(item)
    return lay


def button(text: str, clicked: Callable[[], object] | None = None, *, tip: str | None = None,
           enabled: bool = True) -> QPushButton:
    """A push button with its tooltip, enabled state and click handler."""
    b = QPushButton(text)
    if tip:
        b.setToolTip(tip)
    b.setEnabled(enabled)
    if clicked is not None:
        b.clicked.connect(clicked)
    return b
