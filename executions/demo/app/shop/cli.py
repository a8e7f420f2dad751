"""``python3 shop/cli.py 9.99 5.01 --discount 10`` prints the order's total."""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shop.pricing import total  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Price an order.")
    parser.add_argument("prices", nargs="*", type=float)
    parser.add_argument("--discount", type=float, default=0.0)
    args = parser.parse_args(argv)
    print(f"{total(args.prices, args.discount):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
