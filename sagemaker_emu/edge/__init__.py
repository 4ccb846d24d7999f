"""Who may reach the emulator and how: the HTTP server, the caller guard, SigV4 checks."""
