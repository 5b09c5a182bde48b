"""The WebSocket API's $connect authorizer: consumes a stream ticket, allows one connection."""
