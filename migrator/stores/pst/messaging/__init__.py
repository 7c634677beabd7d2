"""The messaging layer of [MS-PST] §2.4: the message store, folders, messages, recipients and attachments as
property and table contexts, the name-to-id map of named properties, and the well-known nodes every file has."""
