"""A checkpoint's files: a local folder, or a hub repo looked up in the Hugging Face cache
first (a model already downloaded there costs no network round trip), else downloaded.

A file named by a checkpoint's own index is refused unless it stays inside the checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeAlias

from ..errors import HubUnavailableError, ModelNotFoundError, TokneighError
from ..reporting import Report, info
from ..sources.local_files import check_no_special_files, read_regular, regular_or_none
from ..sources.models import ModelSource, checkpoint_file, local_fingerprint, shard_name_problem
from .failures import first_line

# The hub client's own default waits are long; a user with no network should hear it fast.
os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "10")


class LocalFiles:
    """A checkpoint folder on this machine. A file it holds under a name a reader wants, but
    which is not a regular file (a folder, a FIFO, a device), is refused as what it is."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def get(self, name: str) -> Path | None:
        return regular_or_none(self.folder / name)

    def shard(self, name: str) -> Path | None:
        """A file named by the checkpoint's index; refused unless it is inside the folder."""
        return regular_or_none(checkpoint_file(self.folder, name))

    def check_files(self) -> None:
        """Refuse a FIFO, socket or device anywhere in the folder: transformers, when the
        folder is handed to it, opens files by names of its own."""
        check_no_special_files(self.folder)

    def describe(self) -> str:
        return str(self.folder)

    def fingerprint(self) -> dict[str, Any]:
        return {"files": local_fingerprint(self.folder)}


class HubFiles:
    """Files of one hub repo, from the local Hugging Face cache when there, else downloaded."""

    def __init__(self, repo_id: str, report: Report) -> None:
        self.repo_id = repo_id
        self.report = report
        self.revision: str | None = None
        self.missed_offline = False
        self.reachable = False

    def get(self, name: str) -> Path | None:
        from huggingface_hub import constants, hf_hub_download
        from huggingface_hub.errors import (
            EntryNotFoundError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        try:
            path = hf_hub_download(self.repo_id, name, local_files_only=True)
        except (LocalEntryNotFoundError, EntryNotFoundError):
            if constants.HF_HUB_OFFLINE:
                self.missed_offline = True
                return None
            self.report(info(f"downloading {name} from {self.repo_id}"))
            self._check_reachable(name)
            try:
                path = hf_hub_download(self.repo_id, name)
            except RepositoryNotFoundError as exc:
                raise ModelNotFoundError(
                    f"model {self.repo_id!r} does not exist on the Hugging Face hub "
                    "(or it is private or gated)"
                ) from exc
            except RevisionNotFoundError as exc:
                raise ModelNotFoundError(f"model {self.repo_id!r}: revision not found") from exc
            except LocalEntryNotFoundError as exc:
                raise HubUnavailableError(
                    f"model {self.repo_id!r} is not cached and the Hugging Face hub cannot be "
                    "reached"
                ) from exc
            except EntryNotFoundError:
                return None
            except HfHubHTTPError as exc:
                raise HubUnavailableError(
                    f"model {self.repo_id!r}: the hub answered {exc.__class__.__name__}: "
                    f"{str(exc).splitlines()[0]}"
                ) from exc
            except OSError as exc:
                raise HubUnavailableError(
                    f"model {self.repo_id!r}: download failed ({exc})"
                ) from exc
        found = Path(path)
        # hf_hub_download returns .../snapshots/<commit>/<name>
        commit = found.parent.name if "/" not in name else found.parents[name.count("/")].name
        self.revision = self.revision or commit
        return found

    def shard(self, name: str) -> Path | None:
        """A file named by the repo's index (a relative path inside the repo, or refused)."""
        problem = shard_name_problem(name)
        if problem is not None:
            raise ModelNotFoundError(
                f"model {self.repo_id!r}: its index names the weight file {_quoted(name)}, "
                f"which {problem}"
            )
        return self.get(name)

    def _check_reachable(self, name: str) -> None:
        """One HEAD request, no retries: fail fast when the hub cannot be reached.

        ``hf_hub_download`` alone would retry a timed-out request with a 60 s timeout and
        exponential backoff, leaving a user without network waiting for minutes.
        """
        if self.reachable:
            return
        from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url
        from huggingface_hub.errors import HfHubHTTPError

        try:
            get_hf_file_metadata(
                hf_hub_url(self.repo_id, name), timeout=constants.HF_HUB_ETAG_TIMEOUT
            )
        except HfHubHTTPError:
            pass  # the hub answered (404, 401, ...): hf_hub_download reports it below
        except Exception as exc:  # timeout, refused, DNS, proxy: no answer from the hub
            raise HubUnavailableError(
                f"model {self.repo_id!r} is not cached and the Hugging Face hub at "
                f"{constants.ENDPOINT} cannot be reached ({first_line(exc)}); HF_ENDPOINT "
                "may name a reachable mirror"
            ) from exc
        self.reachable = True

    def describe(self) -> str:
        return f"{self.repo_id}@{self.revision}" if self.revision else self.repo_id

    def fingerprint(self) -> dict[str, Any]:
        return {"revision": self.revision}

    def not_found(self, what: str) -> TokneighError:
        if self.missed_offline:
            return HubUnavailableError(
                f"model {self.repo_id!r} is not fully in the Hugging Face cache and "
                "HF_HUB_OFFLINE=1 forbids downloading it (unset HF_HUB_OFFLINE to allow it)"
            )
        return ModelNotFoundError(f"model {self.repo_id!r}: {what}")


CheckpointFiles: TypeAlias = LocalFiles | HubFiles


def open_checkpoint(source: ModelSource, report: Report) -> tuple[CheckpointFiles, Path]:
    """The checkpoint's files (local folder or hub repo) and its config.json, which must exist."""
    files: CheckpointFiles
    if source.is_local:
        files = LocalFiles(Path(source.location))
        files.check_files()
    else:
        files = HubFiles(source.location, report)
    config_path = files.get("config.json")
    if config_path is None:
        raise missing(files, "no config.json: not a Hugging Face model checkpoint")
    return files, config_path


def missing(files: CheckpointFiles, what: str) -> TokneighError:
    if isinstance(files, HubFiles):
        return files.not_found(what)
    return ModelNotFoundError(f"{files.describe()}: {what}")


def read_index(files: CheckpointFiles, name: str) -> dict[str, str] | None:
    """A sharded checkpoint's weight_map (tensor name -> file), each file checked to be a
    file of the checkpoint; None when there is no such index."""
    path = files.get(name)
    if path is None:
        return None
    try:
        data = json.loads(read_regular(path))
    except ValueError as exc:  # UnicodeDecodeError included
        raise missing(files, f"{name} is not valid JSON ({first_line(exc)})") from exc
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if weight_map is None:
        raise missing(files, f"{name} has no weight_map (which file holds each tensor)")
    if not (
        isinstance(weight_map, dict)
        and weight_map
        and all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items())
    ):
        raise missing(files, f"the weight_map of {name} is not a map of tensor names to files")
    for shard_name in sorted(set(weight_map.values())):
        problem = shard_name_problem(shard_name)
        if problem is not None:
            raise missing(
                files, f"{name} names the weight file {_quoted(shard_name)}, which {problem}"
            )
        if isinstance(files, LocalFiles):
            checkpoint_file(files.folder, shard_name)  # no symlink out of the folder either
    return weight_map


def _quoted(name: str) -> str:
    """A file name from a checkpoint's own files, as one line of a message can show it."""
    return repr(name if len(name) <= 200 else name[:200] + "...")
