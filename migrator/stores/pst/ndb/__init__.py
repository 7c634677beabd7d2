"""The node database layer of [MS-PST] §2.2: the file header, the node and block B-trees, data and subnode blocks,
and the allocation maps. It stores nodes (NIDs) as trees of blocks (BIDs) and knows nothing of what they hold."""
