"""The SIP protocol edge: sans-IO SIP core, reginfo XML codec and the asyncio transports."""
