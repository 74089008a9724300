"""Reflection as grpcurl uses it, with grpcio-reflection's client and no generated code:
list the services, describe a message from the file descriptors the server sends, then
build requests from those descriptors and call methods found by name."""

import unittest

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from server import channel

WORKSPACE = "py-reflection"


class Reflection(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.channel = channel()
        cls.database = ProtoReflectionDescriptorDatabase(cls.channel)
        cls.pool = descriptor_pool.DescriptorPool(cls.database)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.channel.close()

    def call(self, method_name: str, request: dict) -> dict:
        """Calls `package.Service/Method` with `request` given as JSON, as grpcurl's `-d`
        does: the method, its input and output types, all found through reflection."""
        service_name, method = method_name.split("/")
        method_descriptor = self.pool.FindServiceByName(service_name).FindMethodByName(method)
        request_class = message_factory.GetMessageClass(method_descriptor.input_type)
        response_class = message_factory.GetMessageClass(method_descriptor.output_type)
        invoke = self.channel.unary_unary(
            f"/{method_name}",
            request_serializer=request_class.SerializeToString,
            response_deserializer=response_class.FromString,
        )
        answer = invoke(json_format.ParseDict(request, request_class()), timeout=30)
        return json_format.MessageToDict(answer)

    def test_lists_the_services(self) -> None:
        self.assertEqual(
            sorted(self.database.get_services()),
            [
                "accessd.v1.AccessService",
                "accessd.v1.AdminService",
                "accessd.v1.AuditService",
                "accessd.v1.ReplicationService",
                "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection",
            ],
        )

    def test_describes_check_request_with_its_comments(self) -> None:
        message = self.pool.FindMessageTypeByName("accessd.v1.CheckRequest")
        self.assertEqual(message.file.name, "accessd/v1/access.proto")
        self.assertEqual(
            [(field.name, field.number) for field in message.fields],
            [
                ("workspace_id", 1),
                ("user_id", 2),
                ("permission", 3),
                ("resource", 4),
                ("at_least_revision", 5),
            ],
        )
        resource = message.fields_by_name["resource"]
        self.assertEqual(resource.message_type.full_name, "accessd.v1.ResourceRef")

        # The file descriptor keeps the proto's comments, which grpcurl's `describe` prints.
        file = self.database.FindFileContainingSymbol("accessd.v1.CheckRequest")
        self.assertIsInstance(file, descriptor_pb2.FileDescriptorProto)
        index = [m.name for m in file.message_type].index("CheckRequest")
        message_path = [descriptor_pb2.FileDescriptorProto.MESSAGE_TYPE_FIELD_NUMBER, index]
        comments = [
            location.leading_comments
            for location in file.source_code_info.location
            if list(location.path) == message_path
        ]
        self.assertEqual(
            comments,
            [" One check: may `user_id` do `permission` to `resource` in `workspace_id`?\n"],
        )

    def test_a_check_built_from_the_described_message(self) -> None:
        created = self.call(
            "accessd.v1.AdminService/CreateWorkspace",
            {"workspace_id": WORKSPACE, "owner_user_id": "olivia"},
        )
        self.assertTrue(created["changed"])
        revision = created["revision"]

        allowed = self.call(
            "accessd.v1.AccessService/Check",
            {
                "workspace_id": WORKSPACE,
                "user_id": "olivia",
                "permission": "source.create",
                "at_least_revision": revision,
            },
        )
        self.assertEqual(
            allowed["decision"],
            {
                "allowed": True,
                "membership": "MEMBERSHIP_OWNER",
                "explanation": f"allowed: `olivia` owns workspace `{WORKSPACE}`",
            },
        )
        self.assertGreaterEqual(int(allowed["revision"]), int(revision))

        denied = self.call(
            "accessd.v1.AccessService/Check",
            {
                "workspace_id": WORKSPACE,
                "user_id": "sam",
                "permission": "source.read",
                "resource": {"type": "source", "id": "ios-prod"},
                "at_least_revision": revision,
            },
        )
        self.assertEqual(denied["decision"]["denial"], "DENIAL_REASON_NOT_A_MEMBER")
        self.assertNotIn("allowed", denied["decision"], "false is the default, left out")


if __name__ == "__main__":
    unittest.main()
