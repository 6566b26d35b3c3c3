"""Did-you-mean suggestions for every name lookup (config keys, enum values, Keras component names).

Never auto-corrects: it only proposes a near match for the error message.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def _norm(name: str) -> str:
    # 'max_pooling_2d', 'MaxPooling2D' and 'maxpooling2d' should all find each other.
    return name.lower().replace("_", "").replace("-", "").replace(" ", "")


def did_you_mean(name: object, candidates: Iterable[str], cutoff: float = 0.6) -> str | None:
    """Return the candidate closest to ``name``, or None when nothing is close enough.

    A candidate equal to ``name`` up to case, ``_`` and ``-`` wins outright; otherwise the closest by
    :func:`difflib.get_close_matches` on those normalised forms.

    Args:
        name: What the user wrote. Non-strings (numbers, None) get no suggestion.
        candidates: The valid names.
        cutoff: Similarity threshold in [0, 1]. Defaults to 0.6.
    """
    if not isinstance(name, str) or not name:
        return None
    pool = [c for c in dict.fromkeys(candidates) if isinstance(c, str) and c != name]
    if not pool:
        return None
    by_norm: dict[str, str] = {}
    for cand in pool:
        by_norm.setdefault(_norm(cand), cand)
    key = _norm(name)
    if key in by_norm:
        return by_norm[key]
    close = difflib.get_close_matches(key, list(by_norm), n=1, cutoff=cutoff)
    if close:
        return by_norm[close[0]]
    # A long name that starts like a short candidate or vice versa ('lr_schedule' -> 'schedule' is too loose,
    # but 'patience_epochs' -> 'patience' is a common slip).
    prefixed = [c for n, c in by_norm.items() if len(n) >= 4 and (key.startswith(n) or n.startswith(key))]
    return prefixed[0] if len(prefixed) == 1 and len(key) >= 4 else None
