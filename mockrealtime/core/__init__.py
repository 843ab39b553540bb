"""The sans-IO core: cassettes, the replay engine, matching, recording, redaction. Never imports aiohttp or asyncio."""
