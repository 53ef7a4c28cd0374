"""Code, data and environment lineage: git state, DVC hashes, content-addressed data storage."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from governance.core.dataset import file_md5
from governance.ledger.canonical import canonical_json_v1

# What shapes a model: a change to any of these, uncommitted, makes the lineage "dirty".
# Outputs the pipeline writes itself (data/, models/, reports/, metrics/, plots/, dvc.lock)
# do not: a fresh clone after `make run` stays clean and promotable.
MODEL_SHAPING_PATHS = (
    "governance",
    "expectations",
    "params.yaml",
    "dvc.yaml",
    "pyproject.toml",
    "requirements",
)
LIBRARIES = (
    "scikit-learn",
    "fairlearn",
    "great-expectations",
    "mlflow",
    "dagster",
    "pandas",
    "numpy",
)
ENVIRONMENT_LOCK = "requirements/main.txt"
ERR_NOT_STORED = "data {md5} is in neither the DVC cache ({cache}) nor the remote ({remote})"
ERR_MD5_MISMATCH = "restored {path} has md5 {actual}, expected {expected}"


@dataclass(frozen=True)
class GitState:
    """The commit the code came from, and whether what shapes a model had uncommitted changes."""

    commit: str | None
    dirty: bool
    changes: tuple[str, ...]


def without_credentials(url: str) -> str:
    """``url`` without a password, and over HTTP(S) without a user name either (a token is often
    given as one: ``https://bot:TOKEN@host/x`` and ``https://TOKEN@host/x`` are
    ``https://host/x``, ``git+https://`` alike); the host and port are kept as written
    (``[::1]:8080``).

    Lineage names where code and models live in documents that are shared and signed
    (OpenLineage events, SLSA statements, PROV); a token in a remote or tracking URL must not
    travel with them. A URL with no credentials is returned unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL urllib can split ("http://[::1"): drop any user part
        return re.sub(r"//[^/]*@", "//", url, count=1)
    user, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    if ":" not in user and parts.scheme.rpartition("+")[2] not in ("http", "https"):
        return url  # ssh://git@host/repo: a user name, no secret
    return urlunsplit(parts._replace(netloc=host))


def code_url(project_dir: Path) -> str:
    """Where the code lives: the git remote ``origin`` (without credentials) if there is one,
    else the directory."""
    try:
        url = subprocess.run(
            ["git", "config", "--get", "remote.origin.url"],
            cwd=project_dir,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except FileNotFoundError:
        url = ""
    return without_credentials(url) if url else project_dir.resolve().as_uri()


def git_state(project_dir: Path) -> GitState:
    """The commit checked out and whether model-shaping files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=project_dir, capture_output=True, text=True, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return GitState(None, True, ("not a git repository with a commit",))
    status = git("status", "--porcelain", "--untracked-files=all", "--", *MODEL_SHAPING_PATHS)
    changes = tuple(line[3:] for line in status.splitlines() if line and "__pycache__" not in line)
    return GitState(commit, bool(changes), changes)


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape a model (:data:`LIBRARIES`)."""
    return {name: metadata.version(name) for name in LIBRARIES}


def package_version() -> str:
    """This package's installed version (``0+unknown`` when not installed)."""
    return metadata.version("governance")


def environment(project_dir: Path) -> dict[str, Any]:
    """The environment lineage: library versions and the hash of the lock file."""
    lock = project_dir / ENVIRONMENT_LOCK
    return {
        "python_packages": library_versions(),
        "lock_file": ENVIRONMENT_LOCK if lock.is_file() else None,
        "lock_sha256": hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else None,
    }


def params_hash(params: dict[str, Any]) -> str:
    """sha256 of the parameters as canonical JSON."""
    blob = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def dvc_lock_outs(project_dir: Path) -> dict[str, dict[str, Any]]:
    """Every output recorded in ``dvc.lock``: path -> {md5, size, stage}."""
    lock = project_dir / "dvc.lock"
    if not lock.is_file():
        return {}
    doc = yaml.safe_load(lock.read_text()) or {}
    outs: dict[str, dict[str, Any]] = {}
    for stage, body in (doc.get("stages") or {}).items():
        for out in body.get("outs") or []:
            outs[out["path"]] = {"md5": out.get("md5"), "size": out.get("size"), "stage": stage}
    return outs


@dataclass(frozen=True)
class DataStore:
    """DVC's content-addressed layout (``files/md5/ab/cdef...``) in the cache and the remote.

    Registration puts every training input here, so a model version's data can be restored
    from its md5 alone, and ``dvc pull`` / ``dvc checkout`` find the same objects.
    """

    cache: Path
    remote: Path

    @staticmethod
    def _object(root: Path, md5: str) -> Path:
        return root / "files" / "md5" / md5[:2] / md5[2:]

    def store(self, path: Path) -> str:
        """Copy ``path`` into the cache and the remote under its md5; return the md5."""
        md5 = file_md5(path)
        for root in (self.cache, self.remote):
            target = self._object(root, md5)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(target.name + ".tmp")
                shutil.copyfile(path, tmp)
                tmp.replace(target)
        return md5

    def locate(self, md5: str) -> Path:
        """Where the bytes of ``md5`` are (cache first, then remote); raises if neither has them."""
        for root in (self.cache, self.remote):
            candidate = self._object(root, md5)
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(
            ERR_NOT_STORED.format(md5=md5, cache=self.cache, remote=self.remote)
        )

    def restore(self, md5: str, dest: Path) -> Path:
        """Copy the object with this md5 to ``dest`` and check the copy's md5."""
        source = self.locate(md5)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        actual = file_md5(dest)
        if actual != md5:
            dest.unlink()
            raise ValueError(ERR_MD5_MISMATCH.format(path=dest, actual=actual, expected=md5))
        return dest


def lineage_id(lineage: Mapping[str, Any]) -> str:
    """Content address of a version's lineage: sha256 of its canonical JSON (sans live tags).

    Defined over canonical JSON format 1, for good: the ids are already written into decision
    records, and replay and trace recompute them to compare.
    """
    stable = {k: v for k, v in lineage.items() if k not in {"aliases", "tags"}}
    return "sha256:" + hashlib.sha256(canonical_json_v1(stable)).hexdigest()
