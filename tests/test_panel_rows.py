"""The panel's rows of widgets: order, stretch factors, margins, buttons."""
from __future__ import annotations

import pytest

pytest.importorskip("PySide6")


def test_a_row_keeps_its_items_in_order_with_their_stretch(qtbot):
    from PySide6.QtWidgets import QLabel, QWidget

    from diffv2m.plugin.panel.rows import STRETCH, button, row_layout
    a, b, c = QLabel("a"), QLabel("b"), QLabel("c")
    lay = row_layout(a, (b, 2), STRETCH, c, margins=False)
    host = QWidget()
    host.setLayout(lay)
    qtbot.addWidget(host)
    assert lay.count() == 4
    assert [lay.itemAt(i).widget() for i in range(4)] == [a, b, None, c]
    assert lay.itemAt(2).spacerItem() is not None
    assert [lay.stretch(i) for i in range(4)] == [0, 2, 1, 0]
    m = lay.contentsMargins()
    assert (m.left(), m.top(), m.right(), m.bottom()) == (0, 0, 0, 0)
    clicks = []
    b1 = button("Go", lambda: clicks.append(1), tip="does it", enabled=False)
    qtbot.addWidget(b1)
    assert (b1.text(), b1.toolTip(), b1.isEnabled()) == ("Go", "does it", False)
    b1.setEnabled(True)
    b1.click()
    assert clicks == [1]
