"""The MQTT protocol: topic tree and payloads, configuration, remote commands, Home Assistant discovery."""
