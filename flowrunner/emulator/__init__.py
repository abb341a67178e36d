"""The bundled ElkAPI emulator (see server.py)."""
