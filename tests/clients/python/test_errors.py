"""Refusals as a Python client sees them: the gRPC status code, and a message that names
the field at fault."""

import unittest

import grpc

from accessd_stubs import access_pb2, access_pb2_grpc, admin_pb2, admin_pb2_grpc
from server import channel

WORKSPACE = "py-errors"


class Errors(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.channel = channel()
        cls.access = access_pb2_grpc.AccessServiceStub(cls.channel)
        cls.admin = admin_pb2_grpc.AdminServiceStub(cls.channel)
        cls.admin.CreateWorkspace(
            admin_pb2.CreateWorkspaceRequest(workspace_id=WORKSPACE, owner_user_id="olivia")
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.channel.close()

    def assertRefused(self, call, request, code: grpc.StatusCode, message: str) -> None:
        with self.assertRaises(grpc.RpcError) as refused:
            call(request)
        self.assertEqual(refused.exception.code(), code, refused.exception.details())
        self.assertEqual(refused.exception.details(), message)

    def test_a_malformed_id_is_invalid_argument_naming_the_field(self) -> None:
        self.assertRefused(
            self.access.Check,
            access_pb2.CheckRequest(
                workspace_id="py errors", user_id="sam", permission="workspace.read"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "`workspace_id`: must be printable ASCII without spaces, found ' ' at byte 2",
        )
        self.assertRefused(
            self.access.Check,
            access_pb2.CheckRequest(
                workspace_id=WORKSPACE,
                user_id="sam",
                permission="source.update",
                resource=access_pb2.ResourceRef(type="source", id=""),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "`resource.id`: must not be empty",
        )

    def test_a_page_too_large_is_invalid_argument(self) -> None:
        self.assertRefused(
            self.access.ListAccess,
            access_pb2.ListAccessRequest(workspace_id=WORKSPACE, page_size=5000),
            grpc.StatusCode.INVALID_ARGUMENT,
            "`page_size`: must be at most 1000, got 5000",
        )

    def test_granting_to_a_non_member_is_failed_precondition(self) -> None:
        self.assertRefused(
            self.admin.Grant,
            admin_pb2.GrantRequest(
                workspace_id=WORKSPACE,
                user_id="bob",
                role="source_read",
                scope=access_pb2.Scope(all=access_pb2.AllInstances()),
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "`user_id`: user `bob` is not a member of the workspace",
        )

    def test_a_missing_workspace_is_not_found_for_a_listing(self) -> None:
        self.assertRefused(
            self.access.ListAccess,
            access_pb2.ListAccessRequest(workspace_id="py-nowhere"),
            grpc.StatusCode.NOT_FOUND,
            "`workspace_id`: workspace `py-nowhere` not found",
        )

    def test_creating_a_workspace_twice_is_already_exists(self) -> None:
        self.assertRefused(
            self.admin.CreateWorkspace,
            admin_pb2.CreateWorkspaceRequest(workspace_id=WORKSPACE, owner_user_id="olivia"),
            grpc.StatusCode.ALREADY_EXISTS,
            f"`workspace_id`: workspace `{WORKSPACE}` already exists",
        )


if __name__ == "__main__":
    unittest.main()
