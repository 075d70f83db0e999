"""JSON transcodings for domain values stored inside events and snapshots."""

from typing import Any

from eventsourcing.persistence import Transcoding

from domain import Binding

_TUPLE_FIELDS = ("path", "methods")


class BindingAsDict(Transcoding):
    type = Binding
    name = "binding"

    def encode(self, obj: Binding) -> dict[str, Any]:
        data = dict(obj.__dict__)  # the key is stored: a binding keeps the identity it was given
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
