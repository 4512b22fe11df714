"""The Hugging Face Hub (or a mirror at `HF_ENDPOINT`) as a source of GGUF files.

The API calls go through `huggingface_hub` (`HfApi`): resolving a revision to its commit,
listing the file tree with each file's size and LFS SHA-256, searching repositories, and its
`X-Error-Code` reading that tells a missing repository from a missing revision or a gated one.
The bytes themselves are fetched by `download.py`, which says why. Every error is turned here
into one of council's, with a message a person can act on; the token is never part of one.

`HF_HUB_DISABLE_XET=1` is set before `huggingface_hub` is imported: its Xet data path would
fetch from Xet storage directly, past `HF_ENDPOINT` (a mirror, or the tests' stand-in). So is
`HF_HUB_DISABLE_TELEMETRY=1`: a private hub tells nobody what it runs, and without it every
request's user agent is built by probing for torch and fetching an "agent harness" list from
the endpoint, cached under ~/.cache, off the stick.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from council.errors import BadRequest, Forbidden, ModelSourceError, NotFound
from council.settings import ENV_HF_TOKEN, Environment

if TYPE_CHECKING:
    from huggingface_hub import HfApi

os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
REVISION = re.compile(r"^[\w./-]{1,200}$")
LIBRARY = "council"
SEARCH_LIMIT = 30


@dataclass(frozen=True, slots=True)
class RemoteFile:
    path: str  # inside the repository
    size: int
    sha256: str | None  # the LFS digest; None for a file kept in git itself (never a real GGUF)

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class Repo:
    repo: str
    revision: str  # as asked for (a branch, tag or commit)
    commit: str  # what it resolved to: every file is fetched at this commit
    files: tuple[RemoteFile, ...]


def check_repo_id(repo: str) -> str:
    repo = repo.strip().strip("/")
    if not REPO_ID.match(repo) or ".." in repo:
        raise BadRequest(f"{repo!r} is not a Hugging Face repository: give owner/name")
    return repo


def check_revision(revision: str) -> str:
    if not REVISION.match(revision) or ".." in revision:
        raise BadRequest(f"{revision!r} is not a revision (a branch, tag or commit)")
    return revision


class HubSource:
    """One endpoint and (maybe) a token; the token lives only in this object and its headers."""

    def __init__(self, env: Environment) -> None:
        self.endpoint = env.hf_endpoint
        self._token = env.hf_token

    def _api(self) -> HfApi:
        from huggingface_hub import HfApi

        # token=False when none is set: no token read from a login cache outside the stick
        return HfApi(endpoint=self.endpoint, token=self._token or False, library_name=LIBRARY)

    def headers(self) -> dict[str, str]:
        """Headers for fetching a file: the user agent, and the token when there is one."""
        from huggingface_hub.utils._headers import build_hf_headers

        return dict(build_hf_headers(token=self._token or False, library_name=LIBRARY))

    def file_url(self, repo: str, commit: str, path: str) -> str:
        return f"{self.endpoint}/{repo}/resolve/{commit}/{quote(path)}"

    def repo(self, repo: str, revision: str = "main") -> Repo:
        """The repository's files at `revision`, resolved to one commit."""
        repo, revision = check_repo_id(repo), check_revision(revision)
        from huggingface_hub.hf_api import RepoFile

        with self._errors(repo, revision):
            api = self._api()
            commit = api.model_info(repo, revision=revision).sha or revision
            files = tuple(
                RemoteFile(item.path, int(item.size), item.lfs.sha256 if item.lfs else None)
                for item in api.list_repo_tree(repo, revision=commit, recursive=True)
                if isinstance(item, RepoFile)
            )
        return Repo(repo, revision, commit, files)

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[dict[str, object]]:
        """Repositories named like `query` that hold GGUF files, most downloaded first."""
        query = query.strip()
        if not query or len(query) > 96:
            raise BadRequest("search for 1 to 96 characters of a repository's name")
        with self._errors(query, None):
            found = self._api().list_models(
                search=query, filter="gguf", sort="downloads", limit=limit
            )
            return [
                {
                    "repo": model.id,
                    "downloads": getattr(model, "downloads", None),
                    "likes": getattr(model, "likes", None),
                    "gated": bool(getattr(model, "gated", False)),
                }
                for model in found
            ]

    @contextmanager
    def _errors(self, repo: str, revision: str | None) -> Iterator[None]:
        """huggingface_hub's exceptions as council's, one line each, never with the token."""
        import httpx2
        from huggingface_hub import errors

        where = self.endpoint
        try:
            yield
        except errors.GatedRepoError:
            raise Forbidden(
                f"{repo} is gated: accept its terms on {where}/{repo} and set {ENV_HF_TOKEN} "
                "to a token of that account"
                if not self._token
                else f"{repo} is gated and this {ENV_HF_TOKEN} has no access: accept its terms "
                f"on {where}/{repo} with the token's account"
            ) from None
        except errors.RepositoryNotFoundError:
            hint = "" if self._token else f" (a private repo needs {ENV_HF_TOKEN})"
            raise NotFound(f"no repository {repo} on {where}{hint}") from None
        except errors.RevisionNotFoundError:
            raise NotFound(f"{repo} has no revision {revision!r}") from None
        except errors.HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise ModelSourceError(f"{where} answered {status} for {repo}") from None
        except httpx2.TransportError as exc:
            raise ModelSourceError(f"cannot reach {where}: {_reason(exc)}") from None


def _reason(exc: Any) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
