"""The pure core: tokens, headers, addresses and rules, with no web or database imports."""
