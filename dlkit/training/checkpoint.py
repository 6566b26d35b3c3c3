"""Resume state at every epoch end: weights + optimizer state, epoch, callback state, written atomically.

One checkpoint is two files in ``checkpoints/``: ``epoch-NNNN.weights.h5`` (``model.save_weights``, which in Keras 3
holds the optimizer variables too) and ``epoch-NNNN.json`` (written second: it is the commit marker). The newest
``keep`` checkpoints are kept so a corrupted newest file falls back to the one before it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlkit.atomic import save_with, write_json
from dlkit.errors import UsageError

log = logging.getLogger("dlkit.training.checkpoint")

_STATE_RE = re.compile(r"^epoch-(\d{4,})\.json$")


@dataclass
class Restored:
    """What :meth:`CheckpointStore.restore` loaded: the epoch count done and the saved state dict."""

    epoch: int
    state: dict[str, Any]
    path: Path


class CheckpointStore:
    """The resume checkpoints of one run folder.

    Args:
        folder: ``RUN/checkpoints``.
        keep: How many epoch checkpoints to keep. Defaults to 2.
    """

    def __init__(self, folder: str | Path, keep: int = 2) -> None:
        self.folder = Path(folder)
        self.keep = max(1, keep)

    def _weights(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch:04d}.weights.h5"

    def _state(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch:04d}.json"

    def epochs(self) -> list[int]:
        """Epoch counts that have a committed checkpoint, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for p in self.folder.iterdir():
            m = _STATE_RE.match(p.name)
            if m and self._weights(int(m.group(1))).is_file():
                found.append(int(m.group(1)))
        return sorted(found)

    def save(self, model: Any, epoch: int, state: dict[str, Any]) -> None:
        """Write the checkpoint after ``epoch`` completed epochs, then prune old ones."""
        save_with(self._weights(epoch), lambda p: model.save_weights(p))
        write_json(self._state(epoch), {"epoch": epoch, **state})
        for old in self.epochs()[: -self.keep]:
            for path in (self._state(old), self._weights(old)):
                path.unlink(missing_ok=True)

    def restore(self, model: Any) -> Restored | None:
        """Load the newest loadable checkpoint into ``model`` (compiled); None when there is none.

        A file that fails to load is reported (logged) and the previous checkpoint is tried.

        Raises:
            UsageError: when checkpoints exist but none of them loads.
        """
        candidates = list(reversed(self.epochs()))
        if not candidates:
            return None
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
        failures = []
        for epoch in candidates:
            weights, state_path = self._weights(epoch), self._state(epoch)
            try:
                with open(state_path, encoding="utf-8") as fh:
                    state = json.load(fh)
                model.load_weights(str(weights))
            except Exception as error:  # noqa: BLE001 - any unreadable file means "try the previous one"
                reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                failures.append(f"{weights.name}: {reason}")
                log.warning(
                    "checkpoint %s is corrupted or unreadable (%s); falling back to the previous one", weights, reason
                )
                continue
            if failures:
                log.warning("resuming from the checkpoint after epoch %d instead", epoch)
            return Restored(epoch, state, weights)
        raise UsageError(
            f"no usable checkpoint in {self.folder}: " + "; ".join(failures),
        )
