"""The lists, tables and properties layer of [MS-PST] §2.3: the heap-on-node, the BTree-on-heap, and the property
and table contexts built on them, with the MAPI property types and tags their values are stored under."""
