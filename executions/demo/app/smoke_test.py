"""Check a deployed copy: ``python3 smoke_test.py <deployed folder> <expected revision>``."""

import subprocess
import sys
from pathlib import Path


def main() -> int:
    folder, expected = Path(sys.argv[1]), sys.argv[2]
    revision = (folder / "REVISION").read_text().strip()
    if revision != expected:
        print(f"FAIL: {folder} serves {revision}, not {expected}")
        return 1
    answer = subprocess.run([sys.executable, str(folder / "shop" / "cli.py"), "10", "5",
                             "--discount", "10"], capture_output=True, text=True)
    if answer.stdout.strip() != "13.50":
        print(f"FAIL: pricing answered {answer.stdout.strip()!r}{answer.stderr}, not '13.50'")
        return 1
    print(f"OK: {folder} serves {revision} and prices correctly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
