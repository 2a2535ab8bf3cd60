"""The live dashboard: one MQTT subscriber (plain TCP) that serves every neuromusic device to browsers.

Debian's mosquitto has no WebSockets, so the browser never talks MQTT: `server.py` subscribes to neuromusic/+/#,
keeps a small bounded picture of each device (`board.py`) and streams updates to pages as Server-Sent Events.
"""
