"""The embedding panel: what the token and position embedding tables hold, and where the prompt's
tokens travel through the residual stream.

Four views, one per tab:

* **Tokens**: the token table (V, C) in 2-D by PCA (instant; each axis says how much variance it
  keeps) or t-SNE (a child process, with progress and Cancel; cached per model, weights and
  settings). Each token is a disc in its character-class colour with its character on it; the
  prompt's characters are ringed; hovering shows id, norm and the 5 nearest tokens by cosine;
  clicking a token draws lines to its neighbours and lists them at the side.
* **Positions**: the position table (block_size, C) by PCA, coloured by position.
* **In context**: the residual stream of the prompt at the selected layer, in the token table's
  PCA basis, with the selected token's path: its embedding row → + position → each block.
* **Dimensions**: cumulative explained variance against the number of PCA components, and how many
  dimensions keep 90% and 99% of the variance.

A new trace with the same weights only moves highlights and context points; tables are projected
once per weights version; only the visible tab is updated, and hidden tabs catch up when shown.
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QListWidget,
                               QListWidgetItem, QProgressBar, QPushButton, QSizePolicy, QSpinBox, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from ...core.projection import (CACHE, CHAR_CLASSES, CosineIndex, ProjectionCache, cached_pca,
                                char_classes, cosine_neighbors_all, projection_key, single_thread_blas,
                                table_key, tsne)
from ...core.tokenizer import display_char
from .. import theme as th
from ..selection import Selection
from ._embed_common import ViewFrame, font, set_label, theme_for
from ._embed_glyphs import GlyphBook
from ._embed_tsne import TsneRunner
from ._embed_views import ContextView, DimensionsView, PositionView, TokenMapView
from .base import ExportView, Panel, Table

TOKENS_HELP = (
    "Every row of token_embedding_table is one character's learned vector (n_embd numbers). We "
    "can't draw n_embd dimensions, so we flatten them to 2. PCA keeps the two directions along "
    "which the rows differ most (the % in each axis label says how much of the spread it shows); "
    "t-SNE instead tries to keep each point's nearest neighbours near, and its axes mean nothing. "
    "Characters the model treats alike end up close: look for vowels, capitals and punctuation "
    "forming groups. Hover for a token's nearest neighbours by cosine similarity, measured in the "
    "full n_embd space; click to draw them.")
POSITIONS_HELP = (
    "position_embedding_table has one learned vector per position 0 … block_size−1, added to the "
    "token's vector so the model knows where each character is. Projected with PCA and joined in "
    "order, a trained model's positions usually form a smooth curve: nearby positions get similar "
    "vectors. Ringed points are the positions the prompt uses.")
CONTEXT_HELP = (
    "The same character means different things in different places. Here each prompt token is "
    "drawn where its residual-stream vector lies at the selected layer, in the same PCA axes as the "
    "token table. The line follows the selected token: its bare embedding row (tok), plus its "
    "position (+pos), then after each block (b0, b1, …) as attention and the feed-forward layers "
    "add to it.")
DIMS_HELP = (
    "How many of the n_embd dimensions does the table really use? Each point of the curve says "
    "what fraction of the rows' spread the first k PCA directions keep. If 90% is reached with few "
    "dimensions, the embeddings live in a small subspace; if it takes almost all of them, every "
    "dimension carries information.")


def depth_for_layer(layer: int, n_layer: int) -> int:
    """Residual depth shown for a selected layer: EMBED → 0, block i → i+1, ln_f/lm_head → L."""
    return 0 if layer < 0 else min(layer + 1, n_layer)


def depth_name(depth: int, n_layer: int) -> str:
    if depth == 0:
        return "embedding (token + position)"
    if depth == n_layer:
        return f"after block {depth - 1} (input of ln_f)"
    return f"after block {depth - 1}"


class EmbeddingPanel(Panel):
    title = "Embeddings"
    help_text = TOKENS_HELP
    LABEL_ALL_MAX = 300  # vocabularies up to this size get a printed label on every point
    N_NEIGHBORS = 5

    def __init__(self, parent: QWidget | None = None, *, cache: ProjectionCache = CACHE,
                 prewarm_ms: int | None = 3000) -> None:
        """``prewarm_ms``: after the first trace, start the t-SNE worker process in the background
        after this many ms, so the first t-SNE does not wait for scikit-learn to load (None: never)."""
        super().__init__(parent)
        self.cache = cache
        self.prewarm_ms = prewarm_ms
        self.theme = theme_for(self)
        self.glyphs = GlyphBook()
        self.runner = TsneRunner(cache, self)
        self.runner.progress.connect(self._on_tsne_progress)
        self.runner.finished.connect(self._on_tsne_finished)
        self.runner.failed.connect(self._on_tsne_failed)
        self.runner.cancelled.connect(self._on_tsne_cancelled)
        self.method = "pca"
        self._table: np.ndarray | None = None
        self._tkey = None
        self.pca = None
        self._index: CosineIndex | None = None
        self._vocab: list[str] = []
        self._classes = np.zeros(0, np.int64)
        self._pos_table: np.ndarray | None = None
        self.pos_pca = None
        self._pos_index: CosineIndex | None = None
        self._shown: np.ndarray | None = None  # coords now on the token map
        self._last_tsne: tuple[object, np.ndarray] | None = None
        self.focus: int | None = None  # the clicked token, if any
        self._cloud_for: np.ndarray | None = None  # the table the context view's cloud shows
        self._dims_for: tuple = (None, None)  # the tables the dimensions view shows
        self._nb_memo: dict = {}
        self.context_xy = np.zeros((0, 2))
        self.path_xy = np.zeros((0, 2))
        self.path_names: list[str] = []
        self.last_render_ms = 0.0
        self._build_ui()
        self._debounce = QTimer(self, singleShot=True, interval=500)
        self._debounce.timeout.connect(self._on_params_settled)

    # ---- UI -------------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        root = QVBoxLayout(self)
        root.setContentsMargins(2, 2, 2, 2)
        bar = QHBoxLayout()
        self.method_box = QComboBox()
        self.method_box.addItems(["PCA", "t-SNE"])
        self.method_box.setToolTip("How to flatten the token table to 2-D (P: PCA, T: t-SNE)")
        self.method_box.currentIndexChanged.connect(self._on_method_changed)
        self.perplexity = QDoubleSpinBox(decimals=0, minimum=2, maximum=100, value=30, singleStep=5)
        self.perplexity.setToolTip("t-SNE perplexity: about how many neighbours each point tries to keep "
                                   "close (must be below the number of tokens)")
        self.iterations = QSpinBox(minimum=250, maximum=5000, value=1000, singleStep=250)
        self.iterations.setToolTip("t-SNE optimisation steps (at least 250)")
        for w in (self.perplexity, self.iterations):
            w.valueChanged.connect(lambda _v: self._debounce.start())
        self.run_button = QPushButton("Run t-SNE")
        self.run_button.setToolTip("Compute the t-SNE layout (Ctrl+R); while it runs, Cancel (Esc)")
        self.run_button.clicked.connect(self._on_run_clicked)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.status = QLabel("")
        self.status.setToolTip("What the projection shows, and t-SNE's progress")
        # progress text changes often: it must not re-lay out (and so repaint) the plots below
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.progress.setFixedWidth(150)
        self._tsne_controls = [QLabel("perplexity"), self.perplexity, QLabel("iterations"), self.iterations]
        for w in [QLabel("Projection:"), self.method_box] + self._tsne_controls + [self.run_button, self.progress]:
            bar.addWidget(w)
        bar.addWidget(self.status, 1)
        root.addLayout(bar)

        t = self.theme
        self.token_view = TokenMapView(t, self.glyphs, self.hover_text, self._on_token_clicked)
        self.pos_view = PositionView(t, self.position_text, self._on_position_clicked)
        self.context_view = ContextView(t, self.glyphs, self.context_text, self._on_context_clicked)
        self.dims_view = DimensionsView(t)

        self.tabs = QTabWidget()
        self.token_frame = ViewFrame("Token embedding table", TOKENS_HELP, self.token_view.widget)
        self.side = side = QWidget()
        side_lay = QVBoxLayout(side)
        side_lay.setContentsMargins(4, 4, 4, 4)
        self.focus_label = QLabel("Click a token to see its nearest neighbours.")
        self.focus_label.setWordWrap(True)
        self.focus_label.setFont(font(th.FONT_PT))
        self.neighbor_list = QListWidget()
        self.neighbor_list.setFont(font(th.FONT_PT + 1))
        self.neighbor_list.setToolTip("Nearest tokens by cosine similarity of their full embedding "
                                      "vectors; click one to jump to it")
        self.neighbor_list.itemClicked.connect(lambda it: self._on_token_clicked(int(it.data(Qt.ItemDataRole.UserRole))))
        side.setMinimumWidth(150)
        side_lay.addWidget(self.focus_label)
        side_lay.addWidget(self.neighbor_list, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.token_frame)
        split.addWidget(side)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        split.setSizes([800, 220])  # the neighbour list gets room for "char  +0.123" lines
        self.tabs.addTab(split, "&Tokens")
        self.pos_frame = ViewFrame("Position embedding table", POSITIONS_HELP, self.pos_view.widget)
        self.tabs.addTab(self.pos_frame, "&Positions")
        self.context_frame = ViewFrame("Residual stream in the token PCA basis", CONTEXT_HELP,
                                       self.context_view.widget)
        self.tabs.addTab(self.context_frame, "In &context")
        dims = QWidget()
        dl = QVBoxLayout(dims)
        dl.setContentsMargins(0, 0, 0, 0)
        self.dims_frame = ViewFrame("Variance kept against PCA components kept", DIMS_HELP, self.dims_view.widget)
        self.dims_readout = QLabel("")
        self.dims_readout.setFont(font(th.TITLE_PT))
        self.dims_readout.setWordWrap(True)
        dl.addWidget(self.dims_frame, 1)
        dl.addWidget(self.dims_readout)
        self.tabs.addTab(dims, "&Dimensions")
        root.addWidget(self.tabs, 1)
        self.tabs.currentChanged.connect(lambda _i: self.render())  # hidden tabs catch up when shown
        for seq, fn in (("Ctrl+R", self._on_run_clicked), ("Escape", self.cancel_tsne),
                        ("P", lambda: self.method_box.setCurrentIndex(0)),
                        ("T", lambda: self.method_box.setCurrentIndex(1))):
            sc = QShortcut(QKeySequence(seq), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(fn)
        self._set_running(False)

    def apply_theme(self, theme: th.Theme) -> None:
        """Colours for a light or dark background (also used to force the light theme on export)."""
        self.theme = theme
        for v in (self.token_view, self.pos_view, self.context_view, self.dims_view):
            v.apply_theme(theme)
        if self.trace is not None:
            self._sync_axes()

    def changeEvent(self, ev: QEvent) -> None:  # noqa: N802 (Qt's name)
        if ev.type() == QEvent.Type.PaletteChange:
            t = theme_for(self)
            if t is not self.theme:
                self.apply_theme(t)
        super().changeEvent(ev)

    # ---- contract -------------------------------------------------------------------------------
    def set_selection(self, sel: Selection) -> None:
        if sel.position != self.selection.position:
            self.focus = None  # a new token selected elsewhere: follow it
        super().set_selection(sel)

    VIEWS = ("tokens", "positions", "context", "dims")  # in tab order

    def render(self, views=None) -> None:
        """Update the visible tab's view (or ``views``); hidden tabs catch up when shown, so a
        keystroke or a training snapshot only pays for what is on screen."""
        tr = self.trace
        if tr is None:
            return
        t0 = time.perf_counter()
        need = set(views) if views is not None else {self.VIEWS[max(0, self.tabs.currentIndex())]}
        with single_thread_blas():  # small matrices: threads only spin on a busy machine
            self._sync_token_table(tr)
            if need & {"positions", "dims"}:
                self._sync_position_table(tr)
            if self.pca is not None:
                if "tokens" in need:
                    self._sync_method()
                    self._sync_token_highlight()
                    self._sync_side()
                if "positions" in need:
                    self.pos_view.set_highlight(tr.T, self._selected()[0])
                if "context" in need:
                    self._sync_context()
                if "dims" in need and not (self._dims_for[0] is self._table and self._dims_for[1] is self._pos_table):
                    self._sync_dims()
            self._sync_captions()
        self.last_render_ms = (time.perf_counter() - t0) * 1000.0

    def refresh_all(self) -> None:
        """Bring every view up to date, visible or not (before an export)."""
        self.render(views=self.VIEWS)

    # ---- tables (once per weights version) --------------------------------------------------------
    def _sync_token_table(self, tr) -> None:
        E = tr.params.get("token_embedding_table.weight")
        if E is None:
            self.pca = None
            self.status.setText("This model has no token embedding table.")
            return
        if E is not self._table:
            self._table = E
            self._tkey = table_key(tr.model_name, tr.weights_version, "token_embedding_table", E)
            self.pca = cached_pca(self._tkey, E, self.cache)
            self._index = CosineIndex(E)
            vocab = list(tr.vocab)
            if vocab != self._vocab:
                self._last_tsne = None
                self._vocab = vocab
                self._classes = char_classes(vocab)
                self.token_view.set_legend(list(CHAR_CLASSES), np.bincount(self._classes, minlength=len(CHAR_CLASSES)))
                self.focus = None
            if self._last_tsne is not None and (self._last_tsne[0][0].model != tr.model_name
                                                or self._last_tsne[1].shape[0] != len(vocab)):
                self._last_tsne = None  # another model: its old layout means nothing here
            self.perplexity.setMaximum(max(2, min(100, len(vocab) - 1)))
            if self.prewarm_ms is not None and self.runner.worker is None:
                QTimer.singleShot(self.prewarm_ms, self, self.runner.prewarm)
            self._shown = None

    def _sync_position_table(self, tr) -> None:
        P = tr.params.get("position_embedding_table.weight")
        if P is self._pos_table:
            return
        self._pos_table = P
        if P is not None:
            key = table_key(tr.model_name, tr.weights_version, "position_embedding_table", P)
            self.pos_pca = cached_pca(key, P, self.cache)
            self._pos_index = CosineIndex(P)
            self.pos_view.set_table(self.pos_pca.coords)
        else:
            self.pos_pca = self._pos_index = None
            self.pos_view.set_table(np.zeros((0, 2)))
        self._sync_axes()

    def _sync_dims(self) -> None:
        if self.pca is None:
            return
        self._dims_for = (self._table, self._pos_table)
        tok = self.pca.cumulative
        pos = self.pos_pca.cumulative if self.pos_pca is not None else None
        k90, k99 = self.pca.dims_for(0.90), self.pca.dims_for(0.99)
        self.dims_view.set_curves(tok, pos, k90, k99)
        C = self._table.shape[1]
        text = (f"Token embeddings: 90% of the variance in <b>{k90}</b> of {C} dimensions, "
                f"99% in <b>{k99}</b>.")
        if self.pos_pca is not None:
            text += (f" Position embeddings: 90% in <b>{self.pos_pca.dims_for(0.90)}</b>, "
                     f"99% in <b>{self.pos_pca.dims_for(0.99)}</b>.")
        self.dims_readout.setText(text)

    # ---- PCA / t-SNE ----------------------------------------------------------------------------
    def tsne_key(self):
        return projection_key(self._tkey, "tsne", perplexity=float(self.perplexity.value()),
                              max_iter=int(self.iterations.value()), seed=0)

    def _sync_method(self) -> None:
        coords = self.pca.coords
        if self.method == "tsne":
            key = self.tsne_key()
            Y = self.cache.get(key)
            if Y is not None:
                coords = Y
                self._last_tsne = (key, Y)
            else:
                if self._last_tsne is not None:
                    coords = self._last_tsne[1]  # the previous layout until the new one is ready
                self._request_tsne(key)
        if coords is not self._shown:
            self._shown = coords
            self.token_view.set_table(coords, self._vocab, self._classes, len(self._vocab) > self.LABEL_ALL_MAX)
            self.token_view.plot.enableAutoRange()
            self._sync_axes()

    def _sync_axes(self) -> None:
        t = self.theme
        if self.pca is not None:
            if self._shown is not None and self._shown is not self.pca.coords:
                set_label(self.token_view.plot, "bottom", "t-SNE 1 (no units)", t)
                set_label(self.token_view.plot, "left", "t-SNE 2 (no units)", t)
            else:
                r = self.pca.explained_variance_ratio
                set_label(self.token_view.plot, "bottom", f"PC1 ({100 * r[0]:.1f}% of variance)", t)
                set_label(self.token_view.plot, "left",
                          f"PC2 ({100 * r[1]:.1f}% of variance)" if len(r) > 1 else "PC2", t)
            set_label(self.context_view.plot, "bottom", "token-table PC1", t)
            set_label(self.context_view.plot, "left", "token-table PC2", t)
            set_label(self.dims_view.plot, "bottom", "number of PCA components kept", t)
            set_label(self.dims_view.plot, "left", "variance kept (%)", t)
        if self.pos_pca is not None:
            r = self.pos_pca.explained_variance_ratio
            set_label(self.pos_view.plot, "bottom", f"PC1 ({100 * r[0]:.1f}% of variance)", t)
            set_label(self.pos_view.plot, "left", f"PC2 ({100 * r[1]:.1f}% of variance)" if len(r) > 1 else "PC2", t)
            self.pos_view.bar.setLabel("right", "position", **{"color": t.foreground})

    def set_projection(self, method: str, *, wait: bool = False) -> None:
        """Show ``"pca"`` or ``"tsne"``. With ``wait=True`` a missing t-SNE is computed here and
        now (for scripts and the headless export) instead of in the background."""
        if method not in ("pca", "tsne"):
            raise ValueError(f"projection must be 'pca' or 'tsne', got {method!r}")
        if method == "tsne" and wait and self._table is not None:
            key = self.tsne_key()
            if self.cache.get(key) is None:
                Y = tsne(self._table, float(self.perplexity.value()), int(self.iterations.value()), 0)
                self.cache.put(key, Y)
        self.method_box.setCurrentIndex(1 if method == "tsne" else 0)

    def _on_method_changed(self, index: int) -> None:
        self.method = "tsne" if index == 1 else "pca"
        self._sync_controls()
        self.render()

    def _sync_controls(self) -> None:
        """t-SNE's settings show only when they matter, so a narrow dock keeps room for the plot."""
        tsne_on = self.method == "tsne"
        for w in self._tsne_controls:
            w.setVisible(tsne_on)
        self.run_button.setVisible(tsne_on or self.runner.busy)

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(ev)
        self.side.setVisible(self.width() >= 560)  # narrow docks: the plot first (hover still lists neighbours)

    def _on_params_settled(self) -> None:
        if self.method == "tsne":
            self.render()

    def _on_run_clicked(self) -> None:
        if self.runner.busy:
            self.cancel_tsne()
            return
        if self.method != "tsne":
            self.method_box.setCurrentIndex(1)  # renders, which requests the job
        else:
            self.render()

    def request_tsne(self) -> bool:
        """Ask for the t-SNE of the current table and settings. Returns True when a job started;
        False when it is cached, a job is already running (no second job starts), or it can't run."""
        if self._tkey is None:
            return False
        key = self.tsne_key()
        if self.cache.get(key) is not None:
            return False
        return self._request_tsne(key)

    def _request_tsne(self, key) -> bool:
        if self.runner.busy:
            if self.runner.running_key != key:
                self.status.setText("t-SNE is still running for earlier settings or weights; the current "
                                    "ones follow when it ends (or press Cancel).")
            return False
        try:
            started = self.runner.request(key, self._table, perplexity=float(self.perplexity.value()),
                                          max_iter=int(self.iterations.value()))
        except ValueError as exc:
            self._tsne_problem(str(exc))
            return False
        if started:
            self._set_running(True)
            self.status.setText("t-SNE starting… (showing PCA until it is ready)" if self._last_tsne is None
                                else "t-SNE updating… (showing the previous layout)")
        return started

    def cancel_tsne(self) -> bool:
        return self.runner.cancel()

    def _set_running(self, running: bool) -> None:
        self.run_button.setText("Cancel" if running else "Run t-SNE")
        self.progress.setVisible(running)
        self._sync_controls()
        if running:
            self.progress.setRange(0, 0)  # busy until the first iteration count arrives

    def _on_tsne_progress(self, it: int, total: int, msg: str) -> None:
        if it >= 0 and total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(min(it, total))
            self.progress.setFormat(f"{it}/{total}")
        self.status.setText(f"t-SNE: {msg}")

    def _on_tsne_finished(self, key, Y, seconds: float) -> None:
        self._set_running(False)
        self.status.setText(f"t-SNE of {Y.shape[0]} tokens done in {seconds:.1f} s")
        if self.method == "tsne" and self.trace is not None:
            self.render()  # shows it, or starts the job for settings changed meanwhile

    def _on_tsne_cancelled(self, key) -> None:
        self._set_running(False)
        if self.method == "tsne" and self._tkey is not None and self.cache.get(self.tsne_key()) is None:
            self.method_box.blockSignals(True)
            self.method_box.setCurrentIndex(0)
            self.method_box.blockSignals(False)
            self.method = "pca"
            self._sync_controls()
            if self.trace is not None:
                self.render()
        self.status.setText("t-SNE cancelled.")

    def _on_tsne_failed(self, key, message: str) -> None:
        self._set_running(False)
        self._tsne_problem(message)

    def _tsne_problem(self, message: str) -> None:
        self.method_box.blockSignals(True)
        self.method_box.setCurrentIndex(0)
        self.method_box.blockSignals(False)
        self.method = "pca"
        self._sync_controls()
        if self.trace is not None:
            self.render()
        self.status.setText(f"<span style='color:{th.OKABE_ITO['vermillion']}'>t-SNE: {message}</span>")

    # ---- per trace / selection --------------------------------------------------------------------
    def _selected(self) -> tuple[int | None, int | None]:
        tr = self.trace
        pos = self.selection.resolved_position(tr.T)
        return pos, (int(tr.ids[pos]) if pos is not None else None)

    def neighbors(self, token: int) -> list[tuple[int, float]]:
        """The 5 nearest tokens by cosine (memoised per table: hover and redraws ask often)."""
        memo = self._nb_memo
        if memo.get("table") is not self._table:
            memo.clear()
            memo["table"] = self._table
        if token not in memo:
            memo[token] = self._index.neighbors(token, self.N_NEIGHBORS)
        return memo[token]

    def _sync_token_highlight(self) -> None:
        pos, tok = self._selected()
        focus = self.focus if self.focus is not None else tok
        nbrs = [j for j, _ in self.neighbors(focus)] if focus is not None else []
        self.token_view.set_highlight(self.trace.ids, tok, focus, nbrs)

    def _sync_context(self) -> None:
        tr = self.trace
        L, T = tr.n_layer, tr.T
        depth = depth_for_layer(self.selection.layer, L)
        pos, tok = self._selected()
        if self._cloud_for is not self._table:
            self._cloud_for = self._table
            self.context_view.set_cloud(self.pca.coords, self._classes)
        if T == 0:
            self.context_xy = self.path_xy = np.zeros((0, 2))
            self.context_view.set_points(self.context_xy, [], [], np.zeros(0, np.int64))
            self.context_view.set_path(self.path_xy, [], None)
            self.context_view.set_message("Type a prompt to see its tokens in the residual stream.")
            return
        self.context_view.set_message("")
        self.context_xy = self.pca.transform(tr.resid(depth))  # (T, 2)
        self.context_view.set_points(self.context_xy, tr.tokens, self._classes[tr.ids], np.arange(T))
        steps = [self._table[tok]] + [tr.resid(d)[pos] for d in range(L + 1)]  # (L+2, C)
        self.path_xy = self.pca.transform(np.stack(steps))
        self.path_names = ["tok", "+pos"] + [f"b{i}" for i in range(L)]
        self.context_view.set_path(self.path_xy, self.path_names, depth + 1)

    def _sync_side(self) -> None:
        pos, tok = self._selected()
        focus = self.focus if self.focus is not None else tok
        self.neighbor_list.clear()
        if focus is None:
            self.focus_label.setText("Click a token to see its nearest neighbours.")
            return
        ch = display_char(self._vocab[focus])
        self.focus_label.setText(
            f"<b style='font-size:{th.TITLE_PT + 6}pt'>{_esc(ch)}</b><br>id {focus}, "
            f"{CHAR_CLASSES[self._classes[focus]]}<br>‖embedding‖ = {self._index.norms[focus]:.3f}"
            f"<br><br>5 nearest by cosine:")
        for j, s in self.neighbors(focus):
            item = QListWidgetItem(f"{display_char(self._vocab[j])}    {s:+.3f}")
            item.setData(Qt.ItemDataRole.UserRole, j)
            item.setToolTip(f"id {j}, cosine similarity {s:+.4f}")
            self.neighbor_list.addItem(item)

    def _sync_captions(self) -> None:
        tr = self.trace
        if self.pca is None:
            return
        V, C = self._table.shape
        how = "PCA" if self._shown is self.pca.coords else f"t-SNE, perplexity {self.perplexity.value():g}"
        self.token_frame.caption.set_text(f"Token table {V}×{C} by {how} · colour = class, ring = in prompt")
        if self.pos_pca is not None:
            n, c = self._pos_table.shape
            self.pos_frame.caption.set_text(f"Position table {n}×{c} by PCA · colour = position, "
                                            f"ring = used by the prompt")
        depth = depth_for_layer(self.selection.layer, tr.n_layer)
        pos, tok = self._selected()
        who = f" · path of ‘{display_char(tr.tokens[pos])}’ @{pos}" if pos is not None else ""
        self.context_frame.caption.set_text(f"Residual {depth_name(depth, tr.n_layer)}, token PCA axes{who}")

    # ---- hover / click ------------------------------------------------------------------------------
    def hover_text(self, i: int) -> str:
        """Tooltip for token ``i``: character, id, class, embedding norm, 5 nearest by cosine."""
        ch = display_char(self._vocab[i])
        lines = [f"{ch}   id {i} · {CHAR_CLASSES[self._classes[i]]}",
                 f"‖embedding‖ = {self._index.norms[i]:.3f}", "nearest by cosine:"]
        lines += [f"  {display_char(self._vocab[j])}   {s:+.3f}" for j, s in self.neighbors(i)]
        if self.trace is not None and i in set(self.trace.ids.tolist()):
            lines.append("(in the prompt)")
        return "\n".join(lines)

    def position_text(self, p: int) -> str:
        lines = [f"position {p}", f"‖p‖ = {self._pos_index.norms[p]:.3f}",
                 "nearest positions by cosine: " + ", ".join(
                     f"{j} ({s:+.2f})" for j, s in self._pos_index.neighbors(p, self.N_NEIGHBORS))]
        if self.trace is not None and p < self.trace.T:
            lines.append(f"the prompt has ‘{display_char(self.trace.tokens[p])}’ here")
        return "\n".join(lines)

    def context_text(self, p: int) -> str:
        tr = self.trace
        depth = depth_for_layer(self.selection.layer, tr.n_layer)
        x = tr.resid(depth)[p]
        near = self._index.query(x, 3)
        return "\n".join([f"position {p}: ‘{display_char(tr.tokens[p])}’", depth_name(depth, tr.n_layer),
                          f"‖x‖ = {np.linalg.norm(x):.3f}",
                          "closest token embeddings by cosine: " + ", ".join(
                              f"{display_char(self._vocab[j])} ({s:+.2f})" for j, s in near),
                          "click to select this position"])

    def _on_token_clicked(self, i: int) -> None:
        self.focus = i
        if self.trace is not None and self.pca is not None:
            self._sync_token_highlight()
            self._sync_side()

    def _request_position(self, p: int) -> None:
        self.set_selection(self.selection.with_changes(position=p))
        self.selectionRequested.emit({"position": p})

    def _on_position_clicked(self, p: int) -> None:
        if self.trace is not None and p < self.trace.T:
            self._request_position(p)

    def _on_context_clicked(self, p: int) -> None:
        self._request_position(p)

    # ---- export -----------------------------------------------------------------------------------
    def _where(self) -> str:
        tr = self.trace
        return f" · {tr.model_name}" if tr is not None else ""

    def export_views(self) -> list[ExportView]:
        self.refresh_all()
        tr = self.trace
        how = "PCA" if self.pca is None or self._shown is self.pca.coords else (
            f"t-SNE perplexity {self.perplexity.value():g}")
        ctx = ""
        if tr is not None:
            pos, _ = self._selected()
            ctx = f" · {depth_name(depth_for_layer(self.selection.layer, tr.n_layer), tr.n_layer)}"
            if pos is not None:
                ctx += f" · token ‘{display_char(tr.tokens[pos])}’ (position {pos})"
        return [
            ExportView("embedding_tokens", self.token_view.widget, f"Token embeddings · {how}{self._where()}"),
            ExportView("embedding_positions", self.pos_view.widget, f"Position embeddings · PCA{self._where()}"),
            ExportView("embedding_context", self.context_view.widget, f"Residual stream in token PCA basis{ctx}"),
            ExportView("embedding_dimensions", self.dims_view.widget,
                       f"Cumulative explained variance · embeddings{self._where()}"),
        ]

    def export_settings(self) -> dict[str, str]:
        """What the figures depend on besides the trace and the selection."""
        if self.pca is not None and self._shown is not None and self._shown is not self.pca.coords:
            return {"projection": f"t-SNE (perplexity {self.perplexity.value():g}, "
                                  f"{self.iterations.value()} iterations)"}
        return {"projection": "PCA"}

    def export_data(self) -> dict:
        self.refresh_all()
        tr = self.trace
        if tr is None or self.pca is None:
            return {}
        in_prompt = set(tr.ids.tolist())
        nb_ids, nb_sims = cosine_neighbors_all(self._table, self.N_NEIGHBORS)
        xy = self._shown if self._shown is not None else self.pca.coords
        tok_rows = []
        for i, ch in enumerate(self._vocab):
            tok_rows.append([i, ch, display_char(ch), CHAR_CLASSES[self._classes[i]], float(xy[i, 0]),
                             float(xy[i, 1]), float(self.pca.coords[i, 0]), float(self.pca.coords[i, 1]),
                             float(self._index.norms[i]), int(i in in_prompt),
                             " ".join(f"{display_char(self._vocab[j])}:{s:.4f}" for j, s in zip(nb_ids[i], nb_sims[i]))])
        out: dict = {"embedding_tokens": Table(
            ["id", "char", "display", "class", "x", "y", "pc1", "pc2", "norm", "in_prompt", "nearest_cosine"], tok_rows)}
        if self.pos_pca is not None:
            pc = self.pos_pca.coords
            out["embedding_positions"] = Table(
                ["position", "pc1", "pc2", "norm", "in_prompt"],
                [[p, float(pc[p, 0]), float(pc[p, 1]), float(self._pos_index.norms[p]), int(p < tr.T)]
                 for p in range(len(pc))])
        L = tr.n_layer
        ctx = np.stack([self.pca.transform(tr.resid(d)) for d in range(L + 1)]) if tr.T else np.zeros((L + 1, 0, 2))
        out["embedding_context"] = Table(
            ["depth", "where", "position", "char", "pc1", "pc2"],
            [[d, depth_name(d, L), p, tr.tokens[p], float(ctx[d, p, 0]), float(ctx[d, p, 1])]
             for d in range(L + 1) for p in range(tr.T)])
        tok_cum = self.pca.cumulative
        pos_cum = self.pos_pca.cumulative if self.pos_pca is not None else np.zeros(0)
        out["embedding_variance"] = Table(  # the two tables can have different numbers of axes
            ["components", "token_cumulative", "position_cumulative"],
            [[k + 1, float(tok_cum[k]) if k < len(tok_cum) else "", float(pos_cum[k]) if k < len(pos_cum) else ""]
             for k in range(max(len(tok_cum), len(pos_cum)))])
        arrays = {"token_coords": np.asarray(xy), "token_pca_components": self.pca.components,
                  "token_pca_mean": self.pca.mean,
                  "token_explained_variance_ratio": self.pca.explained_variance_ratio,
                  "context_coords": ctx, "path_coords": self.path_xy}
        if self.pos_pca is not None:
            arrays["position_coords"] = self.pos_pca.coords
            arrays["position_explained_variance_ratio"] = self.pos_pca.explained_variance_ratio
        out["embedding_arrays"] = arrays
        return out

    def closeEvent(self, ev) -> None:  # noqa: N802
        self.runner.close()
        super().closeEvent(ev)


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
