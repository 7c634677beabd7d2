"""PST (Outlook personal folders): a Unicode PST writer and reader behind the Store interface (store.py).

The folders follow MS-PST's layers: ``ndb/`` the node database (header, pages, B-trees, blocks, allocation
maps), ``ltp/`` lists, tables and properties on it, ``messaging/`` folders, messages and attachments, and
``convert/`` the conversion between MIME and MAPI. ``reader.py`` and ``writer.py`` are the file's two ends.
"""
