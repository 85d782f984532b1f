"""Write the API's OpenAPI document for the web build: ``python -m cloudcc.web.openapi OUT``.

The front end's API types are generated from it (openapi-typescript), so a renamed field
breaks the web type check rather than a user's day. The file is written only when its
content changed, so that the build's up-to-date check sees real changes only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace


def document() -> dict[str, object]:
    from cloudcc.api.app import create_app
    from cloudcc.config import load_settings

    # The routes and their schemas need no running services: a context with settings only.
    app = create_app(SimpleNamespace(settings=load_settings(None, environ={})))  # type: ignore[arg-type]
    return app.openapi()


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else None
    text = json.dumps(document(), indent=1, sort_keys=True) + "\n"
    if out is None:
        sys.stdout.write(text)
    elif not out.is_file() or out.read_text() != text:
        out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
