"""JSON transcodings for domain values stored inside events and snapshots."""

from typing import Any

from eventsourcing.persistence import Transcoding

from domain import Binding

_TUPLE_FIELDS = ("path", "methods")


class BindingAsDict(Transcoding):
    type = Binding
    name = "binding"

    def encode(self, obj: Binding) -> dict[str, Any]:
        data = {k: v for k, v in obj.__dict__.items() if k != "key"}
        for name in _TUPLE_FIELDS:
            data[name] = list(data[name])
        data["params"] = [[k, v] for k, v in obj.params]
        return data

    def decode(self, data: dict[str, Any]) -> Binding:
        values = dict(data)
        for name in _TUPLE_FIELDS:
            values[name] = tuple(values.get(name, ()))
        values["params"] = tuple((k, v) for k, v in values.get("params", ()))
        return Binding(**values)
