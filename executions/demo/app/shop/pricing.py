"""Order totals: prices in cents are for people who trust floats less than this demo."""


def total(prices: list[float], discount_percent: float = 0.0) -> float:
    """The sum of the prices, less the discount, rounded to cents."""
    if not 0 <= discount_percent <= 100:
        raise ValueError("a discount is between 0 and 100 percent")
    total = sum(prices) * (100 - discount_percent) / 100
    return round(total, 2)
