"""Home Assistant MQTT discovery (`--ha-discovery`): the score, state and controls appear as sensors by themselves.

Home Assistant reads retained configs under homeassistant/<component>/<node_id>/<object_id>/config and then follows
our own topics; nothing is published twice. Pause/resume/marker buttons are added only when remote control is on;
with it off, their retained configs are cleared (an empty retained payload), so Home Assistant removes the buttons a
previous session left behind. Each entity suggests its id with `default_entity_id` (e.g. sensor.neuromusic_lab_1_score).
"""

from __future__ import annotations

import json
from typing import Any

from neuromusic.daemon.mqtt import topics as mqtt_topics
from neuromusic.daemon.mqtt.topics import Outgoing
from neuromusic.models.core.controls import CONTROLS

PREFIX = "homeassistant"

# object id -> (name, source topic, value template, unit, icon)
SENSORS: dict[str, tuple[str, str, str, str | None, str]] = {
    "score": ("Relaxation score", "score", "{{ value_json.value }}", None, "mdi:meditation"),
    "confidence": ("Score confidence", "score", "{{ value_json.confidence }}", None, "mdi:gauge"),
    "state": ("State", "status", "{{ value_json.state }}", None, "mdi:state-machine"),
    **{
        spec.name: (
            spec.label.capitalize(),
            "controls",
            f"{{{{ value_json.{spec.name} | round({spec.decimals}) }}}}",
            spec.unit or None,
            spec.icon,
        )
        for spec in CONTROLS
    },
    "quality": ("Signal quality", "quality", "{{ value_json.quality }}", None, "mdi:signal"),
}
BUTTONS: dict[str, tuple[str, dict[str, Any]]] = {
    "pause": ("Pause", {"id": "ha-pause", "cmd": "pause"}),
    "resume": ("Resume", {"id": "ha-resume", "cmd": "resume"}),
    "marker": ("Marker", {"id": "ha-marker", "cmd": "marker", "label": "marker from Home Assistant"}),
}


def _device(device_id: str) -> dict[str, Any]:
    return {"identifiers": [f"neuromusic_{device_id}"], "name": f"neuromusic {device_id}", "manufacturer": "neuromusic"}


def _availability(device_id: str) -> dict[str, Any]:
    # Anything but "offline" counts as available: calibrating and playing are both alive.
    return {
        "availability_topic": mqtt_topics.topic(device_id, "status"),
        "availability_template": "{{ 'offline' if value_json.state == 'offline' else 'online' }}",
    }


def _config(component: str, device_id: str, object_id: str, body: dict[str, Any]) -> Outgoing:
    node = f"neuromusic_{device_id}"
    unique = f"{node}_{object_id}"
    entity = f"{component}.{unique.lower().replace('-', '_')}"  # entity ids take lowercase letters, digits and _
    payload = {"unique_id": unique, "default_entity_id": entity, "device": _device(device_id)}
    payload.update(_availability(device_id))
    payload.update(body)
    return Outgoing(config_topic(component, device_id, object_id), json.dumps(payload).encode(), 1, True)


def config_topic(component: str, device_id: str, object_id: str) -> str:
    return f"{PREFIX}/{component}/neuromusic_{device_id}/{object_id}/config"


def discovery_messages(device_id: str, remote_control: bool) -> list[Outgoing]:
    messages = []
    for object_id, (name, source, template, unit, icon) in SENSORS.items():
        body: dict[str, Any] = {
            "name": name,
            "state_topic": mqtt_topics.topic(device_id, source),
            "value_template": template,
            "icon": icon,
        }
        if unit:
            body["unit_of_measurement"] = unit
        if object_id != "state":
            body["state_class"] = "measurement"
        messages.append(_config("sensor", device_id, object_id, body))
    if remote_control:
        for object_id, (name, command) in BUTTONS.items():
            body = {
                "name": name,
                "command_topic": mqtt_topics.topic(device_id, "cmd"),
                "payload_press": json.dumps(command),
            }
            messages.append(_config("button", device_id, object_id, body))
    else:
        # An empty retained config removes the entity: buttons that would only answer "remote control is off" go.
        messages += [Outgoing(config_topic("button", device_id, object_id), b"", 1, True) for object_id in BUTTONS]
    return messages
