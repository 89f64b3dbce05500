"""Writing outputs safely: staged beside the target, published exclusively, replaced only if ours.

A save writes into a staging folder ``.<name>.unframe-tmp-<pid>-<random>`` in the target's own
folder (same filesystem, so publishing is a rename), then:

- without ``force`` creates the target exclusively (``renameat2(RENAME_NOREPLACE)``, else a hard
  link, else an exclusive placeholder), so of two concurrent saves exactly one wins;
- with ``force`` replaces, in one atomic rename, only what unframe would have written there (a
  regular file, a link itself, or a directory the format's ``is_own_output`` recognises), never a
  link's target, an arbitrary directory, ``/``, home or a folder holding the working directory.

A process killed mid-save leaves its staging folder; the next save into that folder removes it once
the pid in its name is dead. Parent folders a failed save created are removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from unframe.shared_ir.errors import BadInputError

#: Whether an existing path is a model unframe would have written there, so ``force`` may replace it.
OwnOutput = Callable[[Path], bool]

STAGING_MARK = ".unframe-tmp-"
_STAGING_NAME = re.compile(r"\..*\.unframe-tmp-(\d+)-[0-9a-f]+", re.DOTALL)
#: Room left in a 255-byte file name for the staging folder's prefix and suffix.
_STAGED_NAME_CHARS = 100
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_FORCE_HINT = "pass --force to replace it"


def _load_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # a libc older than glibc 2.28, or musl without it
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return function


_RENAMEAT2 = _load_renameat2()


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """Renames with ``flags``; False where this kernel or filesystem cannot (callers fall back)."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


# -- what may be replaced ---------------------------------------------------------------------


def is_regular_file(path: Path) -> bool:
    """Whether ``path`` itself (not a link's target) is a regular file."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _never(path: Path) -> bool:
    return False


def output_path(target: Path | str) -> Path:
    """``target`` made absolute, its folder resolved but never its last component (a link stays one)."""
    path = Path(target)
    if path.name in ("", ".", ".."):
        raise BadInputError(
            "names a folder, not an output path", path=str(target), hint="name the file to write"
        )
    try:
        return path.parent.resolve() / path.name
    except (OSError, RuntimeError) as error:  # a loop of links in the folder's path
        raise BadInputError(
            f"cannot resolve the output's folder: {error}", path=str(target)
        ) from None


def _protected(path: Path) -> bool:
    """The root, home and every folder holding the working directory, which nothing may replace."""
    cwd = Path.cwd().resolve()
    try:
        home = Path.home().resolve()
    except (OSError, RuntimeError):  # no home directory to protect
        home = cwd
    return path in (Path(path.anchor), home, cwd, *cwd.parents)


def _check_replaceable(path: Path, *, force: bool, own: OwnOutput) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as error:
        raise BadInputError(
            f"cannot inspect the output: {error.strerror}", path=str(path)
        ) from None
    if not force:
        raise BadInputError("already exists", path=str(path), hint=_FORCE_HINT)
    if stat.S_ISLNK(info.st_mode):
        return  # the link itself is replaced, never what it points to
    if stat.S_ISDIR(info.st_mode):
        if not _protected(path) and own(path):
            return
        what = "a directory"
    elif stat.S_ISREG(info.st_mode):
        if own(path):
            return
        what = "a file"
    else:
        what = "a special file"
    raise BadInputError(
        f"exists and is {what}, not a model unframe writes there; --force replaces only such a model",
        path=str(path),
        hint="remove it yourself or choose another output path",
    )


def check_output(
    target: Path | str,
    *,
    force: bool,
    directory: bool = False,
    is_own_output: OwnOutput | None = None,
) -> Path:
    """Refuses, before any work, an output that exists without ``force`` or that is not ours."""
    path = output_path(target)
    _check_replaceable(path, force=force, own=_own(directory, is_own_output))
    return path


def _own(directory: bool, is_own_output: OwnOutput | None) -> OwnOutput:
    if is_own_output is not None:
        return is_own_output
    return _never if directory else is_regular_file


# -- staging ----------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # not a pid we write; leave it alone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: alive, someone else's
        return True
    return True


def sweep_stale_staging(folder: Path) -> list[Path]:
    """Removes the staging folders that dead processes left in ``folder``; returns them.

    A folder is swept only when it is a real directory owned by this user whose recorded pid is no
    longer alive; another live process's staging is never touched.
    """
    swept: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return swept
    for entry in entries:
        match = _STAGING_NAME.fullmatch(entry.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        if _alive(int(match.group(1))):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        swept.append(Path(entry.path))
    return swept


def _make_parents(folder: Path) -> list[Path]:
    """Creates ``folder`` and its missing parents; returns those this call created, deepest last."""
    missing: list[Path] = []
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate):
            break
        missing.append(candidate)
    created: list[Path] = []
    for candidate in reversed(missing):
        try:
            candidate.mkdir()
        except FileExistsError:
            continue  # another process made it meanwhile: not ours to remove
        except OSError as error:
            _remove_created(created)
            raise BadInputError(
                f"cannot create the output's folder {candidate}: {error.strerror}", path=str(folder)
            ) from None
        created.append(candidate)
    return created


def _remove_created(created: list[Path]) -> None:
    for folder in reversed(created):
        with contextlib.suppress(OSError):  # not empty: something else now lives there
            folder.rmdir()


def _make_staging(path: Path) -> Path:
    prefix = f".{path.name[:_STAGED_NAME_CHARS]}{STAGING_MARK}{os.getpid()}-"
    while True:
        staging = path.parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            staging.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except OSError as error:
            raise BadInputError(
                f"cannot write in the output's folder: {error.strerror}", path=str(path)
            ) from None
        return staging


# -- publishing -------------------------------------------------------------------------------


def _create_exclusively(source: Path, target: Path) -> None:
    """Moves ``source`` to ``target``; FileExistsError if anything (a dangling link too) is there."""
    if _renameat2(source, target, _RENAME_NOREPLACE):
        return
    if not source.is_dir():
        try:
            os.link(source, target, follow_symlinks=False)
            return  # the staged name goes with the staging folder
        except FileExistsError:
            raise
        except OSError:
            pass  # a filesystem without hard links: claim the name with a placeholder
    if source.is_dir():
        os.mkdir(target)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        os.replace(source, target)  # onto our own empty placeholder
    except OSError:
        with contextlib.suppress(OSError):
            if source.is_dir():
                os.rmdir(target)
            else:
                os.unlink(target)
        raise


def _replace(source: Path, target: Path, own: OwnOutput) -> None:
    """Puts ``source`` at ``target`` in one rename, replacing only what ``own`` (or a link) allows."""
    for _attempt in range(3):
        _check_replaceable(target, force=True, own=own)
        if not source.is_dir():
            os.replace(source, target)  # a rename replaces a link itself, never its target
            return
        if not os.path.lexists(target):
            try:
                _create_exclusively(source, target)
                return
            except FileExistsError:
                continue  # someone created it meanwhile: check what it is again
        try:
            exchanged = _renameat2(source, target, _RENAME_EXCHANGE)
        except FileNotFoundError:
            continue
        if exchanged:
            # The old output now sits at ``source`` inside the staging folder, removed with it;
            # put it back if it changed into something that is not ours since it was checked.
            if not (os.path.islink(source) or own(source)):
                _renameat2(source, target, _RENAME_EXCHANGE)
                raise BadInputError(
                    "changed while being replaced; left as it was", path=str(target)
                )
            return
        # No atomic exchange on this filesystem: move the old one aside, then the new one in.
        os.rename(target, source.with_name(source.name + ".replaced"))
        os.rename(source, target)
        return
    raise BadInputError("keeps changing while being replaced", path=str(target))


def _publish(staging: Path, staged: Path, path: Path, *, force: bool, own: OwnOutput) -> None:
    # Side files (``model.onnx.data``) go first so a reader never finds the model without them.
    sidecars = sorted(entry for entry in staging.iterdir() if entry != staged)
    placed: list[tuple[Path, int]] = []
    try:
        for entry in [*sidecars, staged]:
            destination = path.parent / entry.name
            entry_own = own if entry == staged else is_regular_file
            inode = os.lstat(entry).st_ino
            if force:
                _replace(entry, destination, entry_own)
            else:
                _create_exclusively(entry, destination)
            placed.append((destination, inode))
    except FileExistsError as error:
        _unplace(placed)
        raise BadInputError(
            "already exists", path=error.filename2 or error.filename or str(path), hint=_FORCE_HINT
        ) from None
    except BadInputError:
        _unplace(placed)
        raise
    except OSError as error:
        _unplace(placed)
        raise BadInputError(f"cannot write the output: {error.strerror}", path=str(path)) from None


def _unplace(placed: list[tuple[Path, int]]) -> None:
    """Removes what this save created exclusively, where it is still ours (same inode)."""
    for destination, inode in placed:
        with contextlib.suppress(OSError):
            if os.lstat(destination).st_ino != inode:
                continue
            if os.path.isdir(destination) and not os.path.islink(destination):
                shutil.rmtree(destination)
            else:
                os.unlink(destination)


@contextlib.contextmanager
def atomic_output(
    target: Path,
    *,
    force: bool,
    directory: bool = False,
    is_own_output: OwnOutput | None = None,
) -> Iterator[Path]:
    """Yields a fresh path in a staging folder beside ``target``; publishes it there on success.

    Nothing is left behind when the body raises (created parent folders included). Files written
    beside the yielded path (an ``.onnx.data`` side file) are published with it under the same
    rules. ``is_own_output`` says which existing directory (or file) ``force`` may replace; by
    default a regular file for a file output and nothing for a directory output.
    """
    path = output_path(target)
    own = _own(directory, is_own_output)
    _check_replaceable(path, force=force, own=own)
    created = _make_parents(path.parent)
    try:
        sweep_stale_staging(path.parent)
        staging = _make_staging(path)
        try:
            staged = staging / path.name
            if directory:
                staged.mkdir()
            yield staged
            _publish(staging, staged, path, force=force, own=own)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        _remove_created(created)
        raise
