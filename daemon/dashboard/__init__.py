"""The live dashboard: one MQTT subscriber (plain TCP) that serves every neuromusic device to browsers.

Debian's mosquitto has no WebSockets, so the browser never talks MQTT: `server.py` (aiohttp) subscribes to
neuromusic/+/#, `board.py` keeps a small bounded picture of each device from payloads that `payloads.py` has reduced
to what the page draws, and pages get updates as Server-Sent Events. `access.py` decides who may look (Host, token,
Origin) and `commands.py` what may be forwarded back to a daemon.
"""
