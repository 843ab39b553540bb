"""The aiohttp shell: the WebSocket pump and start-up, routes, the upstream leg, the admin API."""
