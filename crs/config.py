"""Where the project keeps its files, in one place so tests can redirect all of it."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "assets"
DEMO_DIR = ASSETS_DIR / "demo"
DEMO_CATALOG = "demo"


def crs_home() -> Path:
    """Per-user data folder (database, image cache, index cache); `CRS_HOME` overrides it."""
    home = Path(os.environ.get("CRS_HOME") or Path.home() / ".crs")
    home.mkdir(parents=True, exist_ok=True)
    return home


def default_db_url() -> str:
    return os.environ.get("CRS_DB") or f"sqlite:///{crs_home() / 'crs.db'}"


def image_cache_dir() -> Path:
    path = crs_home() / "image-cache"
    path.mkdir(parents=True, exist_ok=True)
    return path


def feature_cache_dir(catalog_name: str) -> Path:
    """Per-item encodings of a catalog, shared by the index and `crs train-align`."""
    return crs_home() / "features" / catalog_name
