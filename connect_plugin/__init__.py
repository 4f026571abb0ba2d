"""Amazon Connect telephony communication plugin for ID Contact."""
