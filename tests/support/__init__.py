"""What the tests share: tiny models and inputs, and the browser."""
