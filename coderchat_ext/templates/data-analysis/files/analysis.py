"""Load every CSV in data/ and print a preview and summary statistics.

Usage: python analysis.py [max_rows]
"""

from __future__ import annotations

import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"


def main() -> None:
    max_rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    try:
        import pandas as pd
    except ImportError:
        sys.exit("pandas is not installed: python -m pip install pandas")
    files = sorted(DATA.glob("*.csv"))
    if not files:
        print(f"No CSV files in {DATA}")
        return
    for path in files:
        frame = pd.read_csv(path)
        print(f"== {path.name}: {len(frame)} rows, {len(frame.columns)} columns")
        print(frame.head(max_rows).to_string())
        print(frame.describe(include="all").transpose().to_string())
        print()


if __name__ == "__main__":
    main()
