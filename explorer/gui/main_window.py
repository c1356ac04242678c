"""The main window: the prompt dock, one dock per panel, menus, shortcuts and the status bar.

The window is built and painted before torch is imported: every dock starts with a "Loading…"
placeholder and gets its panel once the trace worker has loaded the core in the background
(``Controller.warmedUp``). Docks can be moved, tabbed, floated, closed and re-opened (View menu);
the layout and geometry are saved with ``QSettings`` and "Reset layout" restores the default.
"""
from __future__ import annotations

import gc
import html
import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QLabel, QMainWindow, QMessageBox, QProgressBar,
                               QTabWidget, QWidget)

from . import settings as st
from .controller import Controller
from .docks import placeholder, scrolled
from .file_actions import FileActionsMixin
from .panel_sync import PanelSync
from .panels import ANALYSIS_PANELS, PanelSpec, load_panel_classes
from .prompt_bar import DEFAULT_PROMPT, PromptBar
from .selection import EMBED
from .train_control import TrainingControl
from .export import install_export_menu

log = logging.getLogger(__name__)

STATE_VERSION = 4
ARCH_SPEC = PanelSpec("architecture", "ArchitecturePanel", "Architecture", "dock_architecture",
                      "The model's parts: click one to select it in every view.")
TRAIN_SPEC = PanelSpec("training", "TrainingPanel", "Training", "dock_training",
                       "Train a model and watch it learn (Ctrl+T).")


class MainWindow(FileActionsMixin, QMainWindow):
    def __init__(self, controller: Controller | None = None, *, prompt: str = DEFAULT_PROMPT,
                 panels=ANALYSIS_PANELS) -> None:
        """``panels``: the analysis panels to show (``explorer.gui.panels.ANALYSIS_PANELS``)."""
        super().__init__()
        self.controller = controller or Controller(self)
        self.panel_specs = tuple(panels)
        self.panels: dict[str, QWidget] = {}  # object name → Panel
        self.skipped: dict[str, str] = {}  # object name → why the panel is missing
        self.docks: dict[str, QDockWidget] = {}
        self.architecture = None
        self.training_panel = None
        self._pending_open: tuple | None = None
        self.setWindowTitle("GPT Explorer")
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks
                            | QMainWindow.DockOption.AllowNestedDocks)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)

        self.prompt_bar = PromptBar(text=prompt)
        self.prompt_dock = self._make_dock("Prompt", "dock_prompt", self.prompt_bar,
                                           "The prompt and its characters as the model sees them.", closable=False)
        for spec in (ARCH_SPEC, *ANALYSIS_PANELS, TRAIN_SPEC):  # every dock, so layouts stay compatible
            self._make_dock(spec.title, spec.object_name, placeholder("Loading the model…"), spec.tip)
        self._arrange_default()
        self.sync = PanelSync(self.controller, self.panels, self.docks, self)
        self.sync.panelFailed.connect(self._on_panel_failed)
        self.training = TrainingControl(self)
        self._build_status_bar()
        self._build_menus()
        self._default_state = self.saveState(STATE_VERSION)
        self._restore_settings()

        c = self.controller
        self.prompt_bar.textChanged.connect(c.set_text)
        self.prompt_bar.positionClicked.connect(lambda p: c.select(position=p))
        self.prompt_bar.filesDropped.connect(self._open_dropped)
        c.warmedUp.connect(self._create_panels)
        c.modelChanged.connect(self._on_model_changed)
        c.traceChanged.connect(self._on_trace)
        c.selectionChanged.connect(self._on_selection)
        c.loadingChanged.connect(self._on_loading)
        c.modelLoadFailed.connect(self._on_load_failed)
        c.traceFailed.connect(lambda msg: self.statusBar().showMessage(f"Trace failed: {msg}", 8000))
        c.modelSaved.connect(self._on_saved)
        c.modelSaveFailed.connect(lambda path, problem: self.error(
            "Could not save the model", f"<b>{html.escape(path)}</b><br><br>{html.escape(problem)}"))
        c.text = self.prompt_bar.text()
        self.prompt_bar.set_selection(c.selection)
        QTimer.singleShot(0, self.prompt_bar, self.prompt_bar.focus_prompt)

    # ---- docks --------------------------------------------------------------------------------
    def _make_dock(self, title: str, name: str, widget: QWidget, tip: str, closable: bool = True) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        features = QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable
        if closable:
            features |= QDockWidget.DockWidgetFeature.DockWidgetClosable
        dock.setFeatures(features)
        dock.setWidget(widget)
        dock.setToolTip(tip)
        dock.toggleViewAction().setToolTip(f"Show or hide the {title} panel. {tip}")
        self.docks[name] = dock
        return dock

    def _arrange_default(self) -> None:
        """Prompt across the top; architecture (tabbed with training) on the left; attention and
        logits side by side at full height, with embeddings and LayerNorm as the tabs behind them,
        so each view gets room enough to read (four panels at once left each too small)."""
        d = self.docks
        for dock in d.values():
            dock.setFloating(False)
            dock.show()
        self.addDockWidget(Qt.DockWidgetArea.TopDockWidgetArea, d["dock_prompt"])
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, d["dock_architecture"])
        self.tabifyDockWidget(d["dock_architecture"], d["dock_training"])
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, d["dock_attention"])
        self.splitDockWidget(d["dock_attention"], d["dock_logits"], Qt.Orientation.Horizontal)
        self.tabifyDockWidget(d["dock_attention"], d["dock_embeddings"])
        self.tabifyDockWidget(d["dock_logits"], d["dock_layernorm"])
        for name in ("dock_architecture", "dock_attention", "dock_logits"):
            d[name].raise_()

    def _apply_default_sizes(self) -> None:
        d = self.docks
        w, h = max(self.width(), 800), max(self.height(), 600)
        self.resizeDocks([d["dock_prompt"]], [min(int(h * 0.22), 200)], Qt.Orientation.Vertical)
        self.resizeDocks([d["dock_architecture"], d["dock_attention"], d["dock_logits"]],
                         [int(w * 0.23), int(w * 0.385), int(w * 0.385)], Qt.Orientation.Horizontal)
        # the analysis docks take the height the prompt leaves
        self.resizeDocks([d["dock_architecture"], d["dock_attention"], d["dock_logits"]], [int(h * 0.78)] * 3,
                         Qt.Orientation.Vertical)

    def reset_layout(self) -> None:
        self.restoreState(self._default_state, STATE_VERSION)
        self._arrange_default()
        self._apply_default_sizes()

    def _create_panels(self, _seconds: float = 0.0) -> None:
        """Build the panels (the core is imported by now) and put them in their docks."""
        if self.panels:
            return
        from .panels.architecture import ArchitecturePanel
        from .panels.training import TrainingPanel

        classes, self.skipped = load_panel_classes(self.panel_specs)
        for spec in ANALYSIS_PANELS:
            if spec not in self.panel_specs:
                self.skipped[spec.object_name] = "not shown in this window"
        self.architecture = ArchitecturePanel()
        self.training_panel = TrainingPanel()
        built = {ARCH_SPEC.object_name: self.architecture, TRAIN_SPEC.object_name: self.training_panel}
        for spec in self.panel_specs:
            if spec.object_name in classes:
                try:
                    built[spec.object_name] = classes[spec.object_name](parent=None)
                except Exception as e:  # one broken panel must not take the window down
                    log.exception("panel %s failed to build", spec.title)
                    self.skipped[spec.object_name] = f"{type(e).__name__}: {e}"
        for name, why in self.skipped.items():
            title = self.docks[name].windowTitle()
            self.docks[name].setWidget(placeholder(f"The {title} panel is not available.\n\n{why}"))
        for name, panel in built.items():
            self.add_panel(name, panel)
        self.training.attach_panel(self.training_panel)
        if self.controller.model_info is not None:
            self.architecture.set_architecture(self.controller.model_info.architecture)

    def add_panel(self, name: str, panel, title: str | None = None) -> None:
        """Put ``panel`` in the dock ``name`` (made if new) and wire it to the controller and prompt."""
        if name not in self.docks:
            self._make_dock(title or panel.title, name, panel, getattr(panel, "help_text", ""))
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.docks[name])
            self.view_menu.addAction(self.docks[name].toggleViewAction())
        self.panels[name] = panel
        self.docks[name].setWidget(scrolled(panel))
        panel.selectionRequested.connect(self._on_selection_requested)
        panel.appendTextRequested.connect(self.prompt_bar.append_text)
        self.sync.watch(name)  # it gets the current trace and selection at the next turn

    def _on_selection_requested(self, changes: dict) -> None:
        try:
            self.controller.select(**changes)
        except (TypeError, ValueError) as e:
            log.warning("bad selection request %r: %s", changes, e)

    # ---- status bar ---------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        sb = self.statusBar()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setToolTip("Loading…")
        self.busy.hide()
        self.status_labels: dict[str, QLabel] = {}
        tips = {"model": "The loaded model (its file name) and its family.",
                "params": "Number of learned parameters (a tied lm_head counted once).",
                "vocab": "Vocabulary size: the characters the model knows.",
                "block": "block_size: the longest context the model reads.",
                "selection": "The shared selection every view follows: layer, head, position.",
                "trace": "Time of the last forward pass over the prompt (in the background thread)."}
        sb.addWidget(self.busy)
        for key in ("model", "params", "vocab", "block", "selection", "trace"):
            label = QLabel("loading model…" if key == "model" else "")
            label.setObjectName(f"status_{key}")
            label.setToolTip(tips[key])
            if key in ("trace", "selection"):  # changes on every edit: a fixed size, so no window re-layout
                label.setFixedSize(label.fontMetrics().horizontalAdvance(
                    "trace 0000 ms" if key == "trace" else "ln_f / lm_head · head 00 · blocks.00.ln1 · pos 000 'W'") + 8,
                    label.sizeHint().height())
            self.status_labels[key] = label
            sb.addPermanentWidget(label)
        self._on_loading(True, "the model")

    def _on_loading(self, busy: bool, what: str) -> None:
        self.busy.setVisible(busy)
        if busy:
            name = Path(what).name if what and "/" in what else what
            self.statusBar().showMessage(f"Loading {name}…")
            if self.controller.model_info is None:
                self.status_labels["model"].setText("loading model…")
        else:
            self.statusBar().clearMessage()

    def _on_model_changed(self, info) -> None:
        cfg = info.config
        lab = self.status_labels
        lab["model"].setText(f"<b>{html.escape(info.name)}</b> ({cfg.family})")
        lab["model"].setToolTip(f"{info.source or 'not saved yet'}\n{cfg.n_layer} layers, {cfg.n_head} heads, "
                                f"n_embd {cfg.n_embd}")
        lab["params"].setText(f"{info.n_params:,} params")
        lab["vocab"].setText(f"vocab {cfg.vocab_size}")
        lab["block"].setText(f"block {cfg.block_size}")
        self.setWindowTitle(f"{info.name} — GPT Explorer")
        if info.warnings:  # what the loader had to assume, e.g. the Tiny Shakespeare alphabet
            self.statusBar().showMessage("Note: " + " ".join(info.warnings), 20000)
        self.prompt_bar.set_vocab(info.vocab, cfg.block_size)
        if self.architecture is not None:
            self.architecture.set_architecture(info.architecture)
        if info.source and not info.name.startswith("training:"):
            st.add_recent_file(info.source)
            self._refresh_recent()
        self._update_actions()
        # The window, its panels and the model now live until the next model: hide them from the
        # cyclic garbage collector, whose full passes over them paused typing for tens of ms.
        # Unfreezing first lets the objects of the previous model be collected.
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _on_trace(self, trace) -> None:
        self.sync.request()
        self.status_labels["trace"].setText(f"trace {trace.elapsed_ms:.0f} ms")
        self._update_selection_label()

    def _on_selection(self, sel) -> None:
        self.prompt_bar.set_selection(sel)
        self.sync.deliver_selection()
        self._update_selection_label()

    def _on_panel_failed(self, name: str, message: str) -> None:
        self.statusBar().showMessage(f"{self.docks[name].windowTitle()} panel: {message}", 8000)

    def _update_selection_label(self) -> None:
        sel, info, trace = self.controller.selection, self.controller.model_info, self.controller.trace
        if info is None:
            return
        L = info.config.n_layer
        layer = "embeddings" if sel.layer == EMBED else ("ln_f / lm_head" if sel.layer >= L else f"block {sel.layer}")
        text = f"{layer} · head {sel.head} · {sel.ln_site}"
        if trace is not None and trace.T:
            p = sel.resolved_position(trace.T)
            text += f" · pos {p} '{trace.display_tokens[p]}'"
        self.status_labels["selection"].setText(text)

    # ---- menus and shortcuts ------------------------------------------------------------------
    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "", app_wide: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            if app_wide:
                action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        action.setToolTip(tip or text)
        action.setStatusTip(tip or text)
        action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)
        return action

    def _export_source(self):
        """The model's file (and lecture corpus), for the command that remakes an exported figure set."""
        info = self.controller.model_info
        return (info.source, (info.info or {}).get("corpus"), None) if info is not None else None

    def _build_menus(self) -> None:
        mb = self.menuBar()
        c = self.controller
        f = mb.addMenu("&File")
        self.open_action = self._action(f, "&Open checkpoint…", self.open_dialog, QKeySequence.StandardKey.Open,
                                        "Open a model: .safetensors (GPT Explorer), the lecture's state_dict "
                                        "(.pt/.pth) or nanoGPT's ckpt.pt. You can also drop a file on the window.")
        self.recent_menu = f.addMenu("Open &Recent")
        self.recent_menu.setToolTipsVisible(True)
        self._refresh_recent()
        self.save_action = self._action(f, "&Save model as…", self.save_dialog, QKeySequence.StandardKey.SaveAs,
                                        "Save the loaded model in GPT Explorer's .safetensors format.")
        if self.save_action.shortcut().isEmpty():
            self.save_action.setShortcut(QKeySequence("Ctrl+Shift+S"))
        f.addSeparator()
        export_menu = f.addMenu("&Export")
        install_export_menu(export_menu, lambda: list(self.panels.values()), parent=self,
                            get_source=self._export_source)
        f.addSeparator()
        self._action(f, "&Quit", self.close, QKeySequence("Ctrl+Q"), "Quit GPT Explorer.")

        t = mb.addMenu("&Train")
        self.train_action = self._action(t, "&Train…", self.training.new_run, QKeySequence("Ctrl+T"),
                                         "Train a model on a text file and watch every view learn.")
        self.pause_action = self._action(t, "&Pause / resume", self.training.toggle_pause,
                                         QKeySequence("Ctrl+Shift+P"), "Pause or resume the running training.")
        self.stop_action = self._action(t, "&Stop training", lambda: self.training.stop(save=True),
                                        QKeySequence("Ctrl+Shift+X"), "Stop after the current step and save.")
        self.save_now_action = self._action(t, "Save checkpoint &now", self.training.save_now,
                                            QKeySequence("Ctrl+Shift+N"), "Write a checkpoint of the training run now.")

        n = mb.addMenu("&Navigate")
        nav = [("Focus the &prompt", self.prompt_bar.focus_prompt, "Ctrl+L", "Put the cursor in the prompt."),
               ("&Next layer", lambda: c.step_layer(+1), "Alt+Down", "Select the next layer (embeddings → blocks → lm_head)."),
               ("P&revious layer", lambda: c.step_layer(-1), "Alt+Up", "Select the previous layer."),
               ("Next &head", lambda: c.step_head(+1), "Alt+Right", "Select the next attention head."),
               ("Previous h&ead", lambda: c.step_head(-1), "Alt+Left", "Select the previous attention head."),
               ("Next p&osition", lambda: c.step_position(+1), "Alt+Shift+Right", "Select the next token position."),
               ("Previous po&sition", lambda: c.step_position(-1), "Alt+Shift+Left", "Select the previous token position."),
               ("&Last position", lambda: c.select(position=None), "Alt+End",
                "Follow the last character of the prompt (the default).")]
        for text, slot, key, tip in nav:
            self._action(n, text, slot, key, tip, app_wide=True)

        v = self.view_menu = mb.addMenu("&View")
        self.prompt_dock.toggleViewAction().setVisible(False)  # the prompt always stays (no hide entry)
        panels = [d for name, d in self.docks.items() if name != "dock_prompt"]
        for k, dock in enumerate(panels):
            action = dock.toggleViewAction()
            if k < 9:
                action.setShortcut(QKeySequence(f"Alt+{k + 1}"))
            v.addAction(action)
            self.addAction(action)
        v.addSeparator()
        self._action(v, "&Reset layout", self.reset_layout, None, "Put every panel back in its default place.")

        h = mb.addMenu("&Help")
        self._action(h, "&Keyboard shortcuts", self.show_shortcuts, QKeySequence("F1"), "List every keyboard shortcut.")
        self._action(h, "&About GPT Explorer", self.show_about, None, "Version and what this app is.")
        self._update_actions()

    def shortcut_table(self) -> list[tuple[str, str]]:
        rows = []
        for action in self.actions():
            key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if key:
                rows.append((key, action.text().replace("&", "")))
        return rows

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(t)}</td></tr>"
                       for k, t in self.shortcut_table())
        QMessageBox.information(self, "Keyboard shortcuts", f"<table>{rows}</table>")

    def show_about(self) -> None:
        from .. import __version__

        QMessageBox.about(self, "About GPT Explorer",
                          f"<b>GPT Explorer {__version__}</b><br>See how a small character-level GPT works: "
                          "embeddings, LayerNorm, attention and logits, live as you type.")

    def _update_actions(self) -> None:
        training = self.training.running
        has_model = self.controller.model_info is not None
        for a in (self.open_action, self.recent_menu.menuAction()):
            a.setEnabled(not training)
        self.open_action.setToolTip("Stop training first to open another model." if training else
                                    "Open a model (.safetensors, lecture .pt, nanoGPT ckpt.pt).")
        self.save_action.setEnabled(has_model)
        self.train_action.setEnabled(not training)
        for a in (self.pause_action, self.stop_action, self.save_now_action):
            a.setEnabled(training)

    # ---- settings and closing -----------------------------------------------------------------
    def _restore_settings(self) -> None:
        s = st.settings()
        geometry = s.value("window/geometry")
        restored = isinstance(geometry, QByteArray) and not geometry.isEmpty() and self.restoreGeometry(geometry)
        if not restored:
            self.fit_to_screen()
        self._apply_default_sizes()
        state = s.value("window/state")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state, STATE_VERSION)

    def fit_to_screen(self, fraction: float = 0.9) -> None:
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            self.resize(1400, 900)
            return
        avail = screen.availableGeometry()
        w, h = int(avail.width() * fraction), int(avail.height() * fraction)
        self.setGeometry(avail.x() + (avail.width() - w) // 2, avail.y() + (avail.height() - h) // 2, w, h)

    def save_settings(self) -> None:
        s = st.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(STATE_VERSION))
        s.sync()

    def closeEvent(self, event) -> None:  # noqa: N802
        if not self.training.confirm_close():
            event.ignore()
            return
        self.save_settings()
        self.controller.shutdown()
        event.accept()
