"""Which sys extensions still answer 501: the list shrinks on purpose only (an implementation
whose registration is lost, an import dropped by a linter, shows here first)."""

from __future__ import annotations

from pathlib import Path

from voedger.apps.registry import REGISTRY_APP, REGISTRY_APP_DIR
from voedger.apps.sys.implementations import not_built
from voedger.vvm.image import load_image

RESTAURANT = Path(__file__).resolve().parents[2] / "examples" / "restaurant"
STILL_NOT_BUILT: list[str] = []


def test_only_these_sys_extensions_are_not_built() -> None:
    for name, folder in (("untill/restaurant", RESTAURANT), (REGISTRY_APP, REGISTRY_APP_DIR)):
        image = load_image(name, folder)
        assert [str(q) for q in not_built(image.appdef)] == STILL_NOT_BUILT
