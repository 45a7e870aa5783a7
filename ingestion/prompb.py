"""Prometheus remote write 1.0 protobuf messages (``prometheus.WriteRequest``).

Built at import with protobuf's runtime from the message definitions of Prometheus's public
``prompb/remote.proto`` and ``prompb/types.proto``, written out below; only the fields remote
write 1.0 carries are declared (unknown fields, such as exemplars, are skipped by the parser):

    message WriteRequest { repeated TimeSeries timeseries = 1; }
    message TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
    message Label        { string name = 1; string value = 2; }
    message Sample       { double value = 1; int64 timestamp = 2; }   // timestamp: epoch ms

Building the descriptors here, rather than checking in generated code, keeps the classes in
step with whatever protobuf runtime is installed.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_FIELD = descriptor_pb2.FieldDescriptorProto
_MESSAGES = {
    "WriteRequest": [("timeseries", 1, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_REPEATED, "TimeSeries")],
    "TimeSeries": [
        ("labels", 1, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_REPEATED, "Label"),
        ("samples", 2, _FIELD.TYPE_MESSAGE, _FIELD.LABEL_REPEATED, "Sample"),
    ],
    "Label": [
        ("name", 1, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
        ("value", 2, _FIELD.TYPE_STRING, _FIELD.LABEL_OPTIONAL, None),
    ],
    "Sample": [
        ("value", 1, _FIELD.TYPE_DOUBLE, _FIELD.LABEL_OPTIONAL, None),
        ("timestamp", 2, _FIELD.TYPE_INT64, _FIELD.LABEL_OPTIONAL, None),
    ],
}


def _build_file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="vigil/prompb/remote.proto", package="prometheus", syntax="proto3"
    )
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        for name, number, kind, label, type_name in fields:
            field = message.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = f".prometheus.{type_name}"
    return file


_pool = descriptor_pool.DescriptorPool()
_file = _pool.Add(_build_file())
_descriptor = _pool.FindFileByName(_file.name)

WriteRequest = message_factory.GetMessageClass(_descriptor.message_types_by_name["WriteRequest"])
TimeSeries = message_factory.GetMessageClass(_descriptor.message_types_by_name["TimeSeries"])
Label = message_factory.GetMessageClass(_descriptor.message_types_by_name["Label"])
Sample = message_factory.GetMessageClass(_descriptor.message_types_by_name["Sample"])
