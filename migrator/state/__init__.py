"""What migrator remembers between runs: the state file of copied messages, its locks, and where they live."""
