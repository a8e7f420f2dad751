"""The demo shop: prices an order."""
