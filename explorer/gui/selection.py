"""The one shared selection every panel follows: layer, LayerNorm site, head and token position.

``Selection`` is a small frozen value. The controller owns the current one; panels receive it via
``set_selection(sel)`` and ask for changes by emitting ``selectionRequested`` with keyword changes
(for example ``{"position": 3}``), never by mutating anything themselves.

Layers are numbered for the user's path through the model:

* ``EMBED`` (-1): the token + position embeddings;
* ``0 .. n_layer-1``: the blocks of the ``nn.Sequential``;
* ``n_layer``: ``ln_f`` and ``lm_head`` (use ``Selection.is_head(n_layer)``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

EMBED = -1


@dataclass(frozen=True)
class Selection:
    layer: int = 0  # EMBED, a block index, or n_layer for ln_f / lm_head
    ln_site: str = "blocks.0.ln1"  # one of trace.ln_sites
    head: int = 0
    position: int | None = None  # None follows the last token of the prompt

    def with_changes(self, **changes) -> "Selection":
        return replace(self, **changes)

    def resolved_position(self, T: int) -> int | None:
        """The position to show for a T-token trace: the chosen one clamped into range, or the last."""
        if T <= 0:
            return None
        if self.position is None:
            return T - 1
        return max(0, min(self.position, T - 1))

    def block(self, n_layer: int) -> int:
        """The block to show in block-wise views (attention): embeddings map to block 0 and
        ln_f/lm_head to the last block."""
        return max(0, min(self.layer, n_layer - 1))

    def is_head(self, n_layer: int) -> bool:
        return self.layer >= n_layer
