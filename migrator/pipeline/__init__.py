"""The copy pipeline: any store to any stores, each message fetched once and fanned out."""
