"""The agent's screens in a real headless Chromium, against a real running plugin."""
