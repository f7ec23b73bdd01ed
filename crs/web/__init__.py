"""The web interface over the core: the JSON API (``api``), what the web app shares between
requests and its background work (``services``), rate limits, idle-session expiry, and the one
reply-to-JSON that every web client gets (``reply_json``). The gradio page (``webui``) and app.py
sit on top of it; nothing in the core imports it."""
