"""The live view at /_emu/ui: the document it polls (state.py) and the page itself (static/)."""

# With `--auth sigv4` a browser cannot sign: the page's token (printed at start) comes as this
# cookie, which edge/guards.py accepts in place of a signature on /_emu/ only.
COOKIE = "sagemaker-emu-ui"
TOKEN_ENV = "SAGEMAKER_EMU_UI_TOKEN"  # a token of the caller's choosing (tests, scripts); else a random one
