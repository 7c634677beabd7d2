"""Test-only helpers: PST exports read with other programs, the page cache, the repository's data, skips.

The servers, proxies, stand-ins and corpus that the benchmark and the demo use too are in harness/.
"""
