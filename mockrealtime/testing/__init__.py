"""The pytest harness: the plugin, the per-test handle, settings precedence, failure reports."""
