"""Print the URL if a PostgreSQL server answers there, nothing otherwise (used by `make test`)."""

from __future__ import annotations

import sys

from sqlalchemy import create_engine, text


def main() -> int:
    url = sys.argv[1]
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any refusal means "not usable here"
        print(f"PostgreSQL probe failed: {type(exc).__name__}", file=sys.stderr)
        return 0
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
