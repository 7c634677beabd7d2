"""The development harness: real mail servers started on free ports, stand-ins for them, and a corpus.

Shared by the test suite (tests/conftest.py), the benchmark (bench/) and the demo
(``python -m harness.demo``); never installed with migrator and never imported by it.
Nothing here imports migrator's stores: what the harness seeds and reads back is
independent proof of what migrator did.
"""
