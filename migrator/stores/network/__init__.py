"""What the server stores share: TLS, sockets that notice a stall, size limits, wire traces."""
