"""The pytest harness: the plugin, the per-test handle, the record modes, cassette storage, failure reports."""
