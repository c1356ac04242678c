"""The architecture navigator: the loaded model as a tree, as ``print(model)`` shows it.

token and position embedding tables → ``blocks`` (the ``nn.Sequential``) → each Block with ln1, sa
(and its heads), ln2, ffwd → ``ln_f`` → ``lm_head``. Each row shows the module's class, its weights'
shapes (read from the tensors: ``lm_head.weight`` is ``(vocab_size, n_embd)``, as ``nn.Linear``
stores it) and its parameter count. The side box explains the selected part in plain language,
with this model's numbers and the activation shapes for the current prompt.

Clicking a row (or moving to it with the arrow keys) selects that layer, LayerNorm or head in every
view. The tree marks the shared selection in bold. The description comes from
``explorer.core.architecture.describe`` (plain data made in the worker thread): no torch here.
"""
from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (QHeaderView, QSplitter, QTextBrowser, QTreeWidget, QTreeWidgetItem,
                               QTreeWidgetItemIterator, QVBoxLayout, QWidget)

from .. import theme
from ..selection import EMBED, Selection
from ..wrapped_text import WrappedText
from .base import Caption, ExportView, Panel, Table

PATH_ROLE = Qt.ItemDataRole.UserRole


def shapes_text(node: dict) -> str:
    """``weight (65, 128) · bias (65,)``; heads: ``q, k, v (32, 128) each``."""
    tensors = node["tensors"]
    if node["cls"].startswith("Head"):
        w = [t for t in tensors if t["name"].endswith("weight")]
        return f"q, k, v {_fmt(w[0]['shape'])} each, slices of qkv" if w else ""
    parts = []
    for t in tensors:
        mark = " (buffer)" if t["kind"] == "buffer" else (" (tied)" if t["note"].startswith("tied") else "")
        parts.append(f"{t['name']} {_fmt(t['shape'])}{mark}")
    return " · ".join(parts)


def _fmt(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def display_name(node: dict) -> str:
    """As ``print(model)`` names a module: ``(0): Block``, ``ln1: LayerNorm``."""
    name = node["name"]
    return f"({name}): {node['cls']}" if name.isdigit() else f"{name}: {node['cls']}"


class ArchitecturePanel(Panel):
    title = "Architecture"
    help_text = ("The model's parts in the order the data flows through them. Each row shows the "
                 "module's class, its weight shapes (as stored: nn.Linear keeps (out, in)) and its "
                 "parameter count. Click a part to select it in every view; the box below explains "
                 "what it does.")

    nodeActivated = Signal(str)  # path of the node the user picked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.architecture: dict | None = None
        self.nodes: dict[str, dict] = {}
        self.items: dict[str, QTreeWidgetItem] = {}
        self.n_layer = 0
        self._building = False
        self._marked: set[str] = set()

        self.caption = Caption("Architecture: click a part to select it everywhere", self.help_text)
        self.tree = QTreeWidget()
        self.tree.setObjectName("architectureTree")
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["Module: class", "Weights (shape)", "Params"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setToolTip("Click a part to select that layer, LayerNorm or head in every view.")
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.info = QTextBrowser()
        self.info.setObjectName("architectureInfo")
        self.info.setOpenLinks(False)
        self.info.setToolTip("What the selected part does, with this model's numbers.")
        self.live = WrappedText()  # changes with every trace: no re-layout unless its line count does
        self.live.setObjectName("architectureLive")
        self.live.setStyleSheet(f"color: {theme.OKABE_ITO['blue']}")
        self.live.setToolTip("The shapes this part sees for the current prompt (batch of 1, T characters).")
        box = QWidget()
        box_layout = QVBoxLayout(box)
        box_layout.setContentsMargins(0, 0, 0, 0)
        box_layout.addWidget(self.info, 1)
        box_layout.addWidget(self.live)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.tree)
        split.addWidget(box)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.caption)
        layout.addWidget(split, 1)
        self.tree.currentItemChanged.connect(self._on_current_changed)
        self.tree.itemClicked.connect(self._on_clicked)
        self.info.setHtml("<i>Loading the model…</i>")

    # ---- building (once per model) ------------------------------------------------------------
    def set_architecture(self, architecture: dict) -> None:
        self._building = True
        try:
            self.architecture = architecture
            self.nodes.clear()
            self.items.clear()
            self._marked.clear()
            self.tree.clear()
            blocks = [c for c in architecture["children"] if c["path"] == "blocks"]
            self.n_layer = len(blocks[0]["children"]) if blocks else 0
            root = self._add(None, architecture)
            root.setExpanded(True)
            for path in ("blocks", "blocks.0", "blocks.0.sa"):
                if path in self.items:
                    self.items[path].setExpanded(True)
            self.tree.setCurrentItem(root)
            self._show(architecture)
            self.tree.resizeColumnToContents(1)
            self._mark(self.selection)
        finally:
            self._building = False

    def _add(self, parent: QTreeWidgetItem | None, node: dict) -> QTreeWidgetItem:
        params = f"{node['n_params']:,}" if node["n_params"] else "–"
        if any(t["note"].startswith("tied") for t in node["tensors"]):
            params += " (shared)"
        item = QTreeWidgetItem([display_name(node), shapes_text(node), params])
        item.setData(0, PATH_ROLE, node["path"])
        item.setTextAlignment(2, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        tip = node["explain"] + (f"\n\n{node['io']}" if node["io"] else "")
        for col in range(3):
            item.setToolTip(col, tip)
        if parent is None:
            self.tree.addTopLevelItem(item)
        else:
            parent.addChild(item)
        self.nodes[node["path"]] = node
        self.items[node["path"]] = item
        for child in node["children"]:
            self._add(item, child)
        return item

    # ---- interaction --------------------------------------------------------------------------
    def _node_of(self, item: QTreeWidgetItem | None) -> dict | None:
        if item is None:
            return None
        return self.nodes.get(item.data(0, PATH_ROLE))

    def _on_current_changed(self, current, _previous) -> None:
        node = self._node_of(current)
        if node is None:
            return
        self._show(node)
        if not self._building:
            self._request(node)

    def _on_clicked(self, item, _column) -> None:
        node = self._node_of(item)
        if node is not None:
            self._request(node)

    def _request(self, node: dict) -> None:
        self.nodeActivated.emit(node["path"])
        if node["select"]:
            self.selectionRequested.emit(dict(node["select"]))

    def select_path(self, path: str) -> None:
        """Make ``path`` the current row, as a click would."""
        item = self.items[path]
        parent = item.parent()
        while parent is not None:
            parent.setExpanded(True)
            parent = parent.parent()
        self.tree.setCurrentItem(item)
        self._request(self.nodes[path])

    # ---- the side box ---------------------------------------------------------------------------
    def _show(self, node: dict) -> None:
        esc = html.escape
        rows = []
        for t in node["tensors"]:
            note = f" <span style='color:#666'>{esc(t['note'])}</span>" if t["note"] else ""
            rows.append(f"<tr><td><code>{esc(t['name'])}</code></td><td><code>{_fmt(t['shape'])}</code></td>"
                        f"<td align='right'>{t['numel']:,}</td><td>{note}</td></tr>")
        table = ("<table cellspacing='0' cellpadding='2'><tr><th align='left'>tensor</th>"
                 "<th align='left'>shape</th><th align='right'>numbers</th><th></th></tr>"
                 + "".join(rows) + "</table>") if rows else ""
        path = node["path"] or "model"
        self.info.setHtml(
            f"<h3 style='margin:0'>{esc(path)} <span style='font-weight:normal'>· {esc(node['cls'])}</span></h3>"
            f"<p style='margin:2px 0'>{node['n_params']:,} parameters"
            + (f" · <code>{esc(node['io'])}</code>" if node["io"] else "") + "</p>"
            + table + f"<p>{esc(node['explain'])}</p>")
        self._shown = node
        self.live.setText(self._live_shapes(node))

    def _live_shapes(self, node: dict) -> str:
        if self.trace is None or not node["io"]:
            return ""
        T = self.trace.T
        return (f"For the current prompt T = {T}: "
                + node["io"].replace("(B, T", f"(1, {T}").replace("(T,", f"({T},"))

    # ---- Panel contract -----------------------------------------------------------------------
    def render(self) -> None:
        # only the live-shape line depends on the trace (through T): one label, no HTML rebuild
        shown = getattr(self, "_shown", None)
        if shown is not None:
            self.live.setText(self._live_shapes(shown))

    def set_selection(self, sel: Selection) -> None:
        self.selection = sel
        self._mark(sel)

    def selected_paths(self, sel: Selection) -> set[str]:
        """The tree rows that stand for the shared selection."""
        L = self.n_layer
        if sel.layer == EMBED:
            return {"token_embedding_table", "position_embedding_table"}
        if sel.layer >= L:
            return {"ln_f", "lm_head"} if sel.ln_site == "ln_final" else {"lm_head"}
        i = sel.layer
        paths = {f"blocks.{i}", f"blocks.{i}.sa.heads.{sel.head}"}
        if sel.ln_site.startswith(f"blocks.{i}."):
            paths.add(sel.ln_site)
        return paths

    def _mark(self, sel: Selection) -> None:
        if not self.items:
            return
        paths = {p for p in self.selected_paths(sel) if p in self.items}
        accent = QColor(theme.OKABE_ITO["sky"])
        accent.setAlpha(70)
        for p in self._marked - paths:
            self._style(self.items[p], False, accent)
        for p in paths:
            self._style(self.items[p], True, accent)
        self._marked = paths

    @staticmethod
    def _style(item: QTreeWidgetItem, on: bool, accent: QColor) -> None:
        for col in range(3):
            f = QFont(item.font(col))
            f.setBold(on)
            item.setFont(col, f)
            item.setBackground(col, QBrush(accent) if on else QBrush())

    def marked_paths(self) -> set[str]:
        return set(self._marked)

    def export_views(self) -> list[ExportView]:
        return [ExportView("architecture", self.tree, "Architecture")]

    def export_data(self) -> dict:
        if self.architecture is None:
            return {}
        table = Table(["path", "class", "weights", "params", "io"])
        iterator = QTreeWidgetItemIterator(self.tree)
        while iterator.value():
            node = self.nodes[iterator.value().data(0, PATH_ROLE)]
            table.rows.append([node["path"] or "model", node["cls"], shapes_text(node), node["n_params"], node["io"]])
            iterator += 1
        return {"architecture": table}
