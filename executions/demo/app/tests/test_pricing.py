import unittest

from shop.pricing import total


class TotalTests(unittest.TestCase):
    def test_sums_the_prices(self):
        self.assertEqual(total([9.99, 5.01]), 15.0)

    def test_applies_the_discount(self):
        self.assertEqual(total([100.0], discount_percent=15), 85.0)

    def test_rounds_to_cents(self):
        self.assertEqual(total([0.333, 0.333]), 0.67)

    def test_refuses_a_discount_above_100_percent(self):
        with self.assertRaises(ValueError):
            total([1.0], discount_percent=120)

    def test_an_empty_order_costs_nothing(self):
        self.assertEqual(total([]), 0.0)
