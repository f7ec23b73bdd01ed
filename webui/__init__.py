"""The gradio chat page (mounted at / by app.py)."""
