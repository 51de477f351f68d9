"""Reading the files this workflow writes, all failing one way: a `DamagedFile` error that names the file,
says what is wrong with it and gives the fix (delete it and rerun, or the command that rebuilds it).

Tables (Parquet), checkpoints (torch, `weights_only=True`) and array files (.npz, never with pickle) are
read here and nowhere else, so no library error that names no file (pyarrow's "Parquet magic bytes not
found in footer") or suggests loading untrusted code (torch's "weights_only=False") reaches a user.
"""

from __future__ import annotations

import os
import re
import stat
from contextlib import contextmanager
from pathlib import Path


class Refusal(RuntimeError):
    """An error whose message says all a user needs (what is wrong, where, the fix): a job shows it alone in its
    log, without a traceback that would bury it, and a command prints it in one line."""


class DamagedFile(Refusal):
    """A file the workflow reads that is not what it should be (truncated, swapped, foreign)."""


@contextmanager
def written(path: str | os.PathLike):
    """A binary file to write `path`'s content to: it replaces `path` (a rename) when the block ends, and is
    removed if the block fails, so a full disk or an error leaves neither a half file under the real name
    nor a temporary one. (The temporary `<name>.tmp` matches none of the workflow's globs.)"""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def private_folder(path: str | os.PathLike) -> Path:
    """A folder only this user can enter, made if missing (mode 0700): where lock files and the like go that
    another local user must not be able to plant a link or a file in. One that is a link, another user's or
    open to others is refused, naming it and the fix."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise Refusal(
            f"{path} is not a folder of this user's alone (a link, another user's, or open to others); remove it, "
            "or name a folder of your own"
        )
    return path


def fix_for(path: str | os.PathLike) -> str:
    """What rebuilds a file of the workflow, from where it lies under results/."""
    text = Path(path).as_posix()
    run = re.search(r"results/runs/([0-9a-f]{12})/", text)
    if run:
        return f"train run {run.group(1)} again: snakemake --forcerun results/runs/{run.group(1)}/manifest.json"
    for folder, rule in (
        ("results/metrics/", "its metric job"),
        ("results/data/", "rule dataset or noisy_dataset"),
        ("/tables/", "rule experiment_table"),  # results/<config>/tables/
        ("/figures/", "rule figure"),
    ):
        if folder in text:
            return f"delete {path} and run snakemake again ({rule} rebuilds it)"
    return f"replace {path} with a file this workflow wrote, or delete it"


def _damaged(path, what: str, err: BaseException | None = None, fix: str | None = None) -> DamagedFile:
    why = f" ({type(err).__name__})" if err is not None else ""
    return DamagedFile(f"{path} {what}{why}; {fix or fix_for(path)}")


def read_npz(path: str | os.PathLike, names: list[str] | None = None, *, fix: str | None = None) -> dict:
    """The arrays of a .npz (the named ones, or all), read without pickle: an object array is refused."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [n for n in names or () if n not in f.files]
            if missing:
                raise _damaged(path, f"lacks the arrays {missing}", fix=fix)
            return {n: f[n] for n in (names or f.files)}
    except DamagedFile:
        raise
    except FileNotFoundError:
        raise _damaged(path, "is missing", fix=fix) from None
    except ValueError as err:
        if "allow_pickle" in str(err):  # an object array: pickled Python objects, which are never loaded
            raise _damaged(path, "cannot be read: it holds an object array (pickled Python objects, never loaded)",
                           fix=fix) from None  # fmt: skip
        raise _damaged(path, "cannot be read as an array file", err, fix) from None
    except Exception as err:  # BadZipFile, EOFError, OSError, zlib errors: a damaged file
        raise _damaged(path, "cannot be read as an array file", err, fix) from None


def load_checkpoint(path: str | os.PathLike, device="cpu") -> dict:
    """A checkpoint or resume state: tensors and plain values only (`weights_only=True`). Torch's own message
    is not passed on: for a file that is not plain tensors it suggests `weights_only=False`, i.e. running
    whatever code the file holds."""
    import torch

    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise _damaged(path, "is missing") from None
    except Exception as err:  # UnpicklingError, RuntimeError (a zip cut short), EOFError, OSError
        raise _damaged(path, "cannot be read as a checkpoint of tensors", err) from None
    if not isinstance(state, dict) or "params" not in state:
        raise _damaged(path, "is not a checkpoint of this workflow (no parameters in it)")
    return state


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None):
    """A Parquet table; with `columns`, one that has at least those (a foreign table is named as such)."""
    import pandas as pd
    import pyarrow as pa

    try:
        frame = pd.read_parquet(path)
    except FileNotFoundError:
        raise _damaged(path, "is missing") from None
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _damaged(path, "cannot be read as a Parquet table (truncated or not Parquet)", err) from None
    lacking = [c for c in columns or () if c not in frame.columns]
    if lacking:
        raise _damaged(path, f"is not the table its name says: it lacks the columns {lacking}")
    return frame


def read_parquet_metadata(path: str | os.PathLike) -> dict[bytes, bytes]:
    """A Parquet file's key-value metadata, from its footer alone."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path).metadata or {}
    except FileNotFoundError:
        raise _damaged(path, "is missing") from None
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _damaged(path, "cannot be read as a Parquet table (truncated or not Parquet)", err) from None
