"""What the local stores share: safe file access below an archive root, folder trees, leftovers of killed runs."""
