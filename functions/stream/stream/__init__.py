"""The WebSocket API: the stream function ($connect, $disconnect, sendMessage, $default) and its worker."""
